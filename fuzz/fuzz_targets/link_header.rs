//! `Link` header parsing: any header values (one per line of the input) give a next link, no
//! next link or an error, never a panic; the answer does not depend on repeating a header.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let headers: Vec<&str> = text.split('\n').collect();
    let once = connectors::okta::find_next_link_for_fuzzing(&headers);
    if let Ok(Some(target)) = &once {
        assert!(
            !target.contains('>'),
            "a target never holds the closing bracket: {target:?}"
        );
    }
    // The same headers sent twice announce the same next link.
    let twice: Vec<&str> = headers.iter().chain(headers.iter()).copied().collect();
    let again = connectors::okta::find_next_link_for_fuzzing(&twice);
    assert_eq!(once.is_ok(), again.is_ok(), "{headers:?}");
    if let (Ok(a), Ok(b)) = (once, again) {
        assert_eq!(a, b);
    }
});
