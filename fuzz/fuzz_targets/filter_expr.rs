//! The simulator's `filter`/`search` expression parser: any text parses or gives an error
//! with a position inside the input, never a panic or a stack overflow.
#![no_main]

use connectors::okta::simulator::expr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = expr::parse(text) {
        let message = e.to_string();
        assert!(!message.is_empty());
    }
});
