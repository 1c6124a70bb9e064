//! `Link` header parsing (RFC 8288) for Okta's pagination: find the `rel="next"` target.
//! Okta sends one header per relation; a comma-joined header is accepted too.

/// One link-value: the target and its relation types.
#[derive(Debug, PartialEq, Eq)]
struct LinkValue {
    target: String,
    rels: Vec<String>,
}

/// The `rel="next"` target among all `Link` header values, `None` on the last page.
/// Returns a description of the problem when a header is malformed or two different
/// next links are announced.
pub(crate) fn find_next_link<'a>(
    headers: impl IntoIterator<Item = &'a str>,
) -> Result<Option<String>, String> {
    let mut next: Option<String> = None;
    for header in headers {
        for link in parse_header(header)? {
            if link.rels.iter().any(|r| r.eq_ignore_ascii_case("next")) {
                match &next {
                    Some(existing) if *existing != link.target => {
                        return Err(format!(
                            "two different rel=\"next\" links: {existing} and {}",
                            link.target
                        ))
                    }
                    _ => next = Some(link.target),
                }
            }
        }
    }
    Ok(next)
}

/// Parses one `Link` header value into its link-values.
fn parse_header(header: &str) -> Result<Vec<LinkValue>, String> {
    let mut links = Vec::new();
    let mut rest = header.trim_start();
    while !rest.is_empty() {
        let Some(after_open) = rest.strip_prefix('<') else {
            return Err(format!("Link header {header:?}: expected '<' at {rest:?}"));
        };
        let Some(close) = after_open.find('>') else {
            return Err(format!("Link header {header:?}: '<' without '>'"));
        };
        let target = after_open[..close].trim().to_owned();
        rest = &after_open[close + 1..];
        let mut rels = Vec::new();
        // Parameters: `; name=value` or `; name="quoted value"`, until ',' or the end.
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix(',') {
                rest = after.trim_start();
                break;
            }
            let Some(after_semi) = rest.strip_prefix(';') else {
                if rest.is_empty() {
                    break;
                }
                return Err(format!("Link header {header:?}: unexpected {rest:?}"));
            };
            let param = after_semi.trim_start();
            let name_end = param.find(['=', ';', ',']).unwrap_or(param.len());
            let name = param[..name_end].trim().to_ascii_lowercase();
            rest = &param[name_end..];
            let mut value = String::new();
            if let Some(after_eq) = rest.strip_prefix('=') {
                let after_eq = after_eq.trim_start();
                if let Some(quoted) = after_eq.strip_prefix('"') {
                    let Some(end) = quoted.find('"') else {
                        return Err(format!("Link header {header:?}: unterminated quote"));
                    };
                    value.push_str(&quoted[..end]);
                    rest = &quoted[end + 1..];
                } else {
                    let end = after_eq.find([';', ',']).unwrap_or(after_eq.len());
                    value.push_str(after_eq[..end].trim());
                    rest = &after_eq[end..];
                }
            }
            if name == "rel" {
                rels.extend(value.split_ascii_whitespace().map(str::to_owned));
            }
        }
        links.push(LinkValue { target, rels });
    }
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn okta_style_separate_headers() {
        let headers = [
            r#"<https://x.okta.com/api/v1/users?limit=200>; rel="self""#,
            r#"<https://x.okta.com/api/v1/users?after=00ud4tVDDXYVKPXKVLCO&limit=200>; rel="next""#,
        ];
        assert_eq!(
            find_next_link(headers).unwrap().as_deref(),
            Some("https://x.okta.com/api/v1/users?after=00ud4tVDDXYVKPXKVLCO&limit=200")
        );
    }

    #[test]
    fn last_page_has_only_self() {
        let headers = [r#"<https://x.okta.com/api/v1/users?limit=200>; rel="self""#];
        assert_eq!(find_next_link(headers).unwrap(), None);
        assert_eq!(find_next_link(std::iter::empty()).unwrap(), None);
    }

    #[test]
    fn comma_joined_header_and_variants() {
        let joined = r#"<https://x/api?a=1,2>; rel="self", <https://x/api?after=b>;rel=next"#;
        assert_eq!(
            find_next_link([joined]).unwrap().as_deref(),
            Some("https://x/api?after=b")
        );
        let multi_rel = r#"<https://x/n>; title="a; b, c"; rel="prev next""#;
        assert_eq!(
            find_next_link([multi_rel]).unwrap().as_deref(),
            Some("https://x/n")
        );
        // Same next twice is fine.
        let n = r#"<https://x/n>; rel="next""#;
        assert_eq!(
            find_next_link([n, n]).unwrap().as_deref(),
            Some("https://x/n")
        );
    }

    #[test]
    fn malformed_headers_are_errors() {
        for bad in [
            "https://x/n; rel=next",
            "<https://x/n; rel=next",
            r#"<https://x/n>; rel="next"#,
            "<https://x/n> rel=next",
        ] {
            assert!(find_next_link([bad]).is_err(), "{bad:?}");
        }
        let two = [
            r#"<https://x/1>; rel="next""#,
            r#"<https://x/2>; rel="next""#,
        ];
        assert!(find_next_link(two).unwrap_err().contains("two different"));
    }
}
