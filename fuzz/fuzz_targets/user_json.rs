//! The User model: any bytes parse as a user or fail, never panic; a parsed user serialises
//! and parses back to the same user.
#![no_main]

use connectors::okta::User;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(user) = serde_json::from_slice::<User>(data) {
        let json = serde_json::to_vec(&user).expect("a parsed user serialises");
        let back: User = serde_json::from_slice(&json).expect("and parses back");
        assert_eq!(back, user);
    }
    let _ = serde_json::from_slice::<Vec<User>>(data);
});
