//! A parser for Okta's `filter` / `search` expression language (SCIM-like):
//! `attribute op "value"`, `attribute pr`, `and`, `or`, parentheses. `and` binds tighter than
//! `or`; operators and `and`/`or` are case-insensitive. `not` is rejected (the Users API does
//! not support it). Input size and nesting depth are bounded, so any input is safe to parse.

use std::fmt;

/// Longest expression accepted, in bytes.
pub const MAX_LEN: usize = 4096;
/// Deepest parenthesis nesting accepted.
pub const MAX_DEPTH: usize = 32;

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// Both sides hold.
    And(Box<Expr>, Box<Expr>),
    /// Either side holds.
    Or(Box<Expr>, Box<Expr>),
    /// `attribute op value` (`value` is `None` for `pr`).
    Compare {
        /// Dotted attribute path, e.g. `profile.login`.
        attribute: String,
        /// The operator.
        op: Op,
        /// The literal compared with.
        value: Option<Literal>,
    },
}

/// Attribute operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// equal
    Eq,
    /// not equal (parsed, refused by the Users API)
    Ne,
    /// greater than
    Gt,
    /// greater or equal
    Ge,
    /// less than
    Lt,
    /// less or equal
    Le,
    /// starts with
    Sw,
    /// contains
    Co,
    /// present (has a value)
    Pr,
}

impl Op {
    fn parse(word: &str) -> Option<Op> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            "sw" => Op::Sw,
            "co" => Op::Co,
            "pr" => Op::Pr,
            _ => return None,
        })
    }
}

/// A literal value.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// A double-quoted JSON string (dates are strings too).
    String(String),
    /// A number.
    Number(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// Why an expression does not parse, and where (byte offset).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset of the problem.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)
    }
}

impl std::error::Error for ParseError {}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Open,
    Close,
    Word(String),
    Str(String),
    Number(f64),
}

/// Parses an expression.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    if input.len() > MAX_LEN {
        return Err(ParseError {
            position: MAX_LEN,
            message: format!("expression longer than {MAX_LEN} bytes"),
        });
    }
    let tokens = tokenize(input)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        end: input.len(),
    };
    let expr = parser.or(0)?;
    match parser.tokens.get(parser.pos) {
        None => Ok(expr),
        Some((at, token)) => Err(ParseError {
            position: *at,
            message: format!("unexpected {token:?} after a complete expression"),
        }),
    }
}

fn tokenize(input: &str) -> Result<Vec<(usize, Token)>, ParseError> {
    let mut tokens = Vec::new();
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                tokens.push((i, Token::Open));
                i += 1;
            }
            b')' => {
                tokens.push((i, Token::Close));
                i += 1;
            }
            b'"' => {
                let (value, end) = string_literal(input, i)?;
                tokens.push((i, Token::Str(value)));
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_digit()
                        || matches!(bytes[i], b'.' | b'e' | b'E' | b'+' | b'-'))
                {
                    i += 1;
                }
                let text = &input[start..i];
                let n: f64 = text.parse().map_err(|_| ParseError {
                    position: start,
                    message: format!("bad number {text:?}"),
                })?;
                tokens.push((start, Token::Number(n)));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.' | b'$'))
                {
                    i += 1;
                }
                tokens.push((start, Token::Word(input[start..i].to_owned())));
            }
            _ => {
                let ch = input[i..].chars().next().unwrap_or('?');
                return Err(ParseError {
                    position: i,
                    message: format!("unexpected character {ch:?}"),
                });
            }
        }
    }
    Ok(tokens)
}

/// A JSON string literal starting at `start` (the opening quote); returns it and the offset
/// after the closing quote.
fn string_literal(input: &str, start: usize) -> Result<(String, usize), ParseError> {
    let mut out = String::new();
    let mut chars = input[start + 1..].char_indices();
    let err = |offset: usize, message: &str| ParseError {
        position: start + 1 + offset,
        message: message.to_owned(),
    };
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((out, start + 1 + at + 1)),
            '\\' => match chars.next() {
                Some((_, '"')) => out.push('"'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, '/')) => out.push('/'),
                Some((_, 'b')) => out.push('\u{8}'),
                Some((_, 'f')) => out.push('\u{c}'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, 't')) => out.push('\t'),
                Some((at, 'u')) => {
                    let mut code = 0u32;
                    for _ in 0..4 {
                        let digit = chars
                            .next()
                            .and_then(|(_, h)| h.to_digit(16))
                            .ok_or_else(|| err(at, "bad \\u escape"))?;
                        code = code * 16 + digit;
                    }
                    out.push(char::from_u32(code).ok_or_else(|| err(at, "bad \\u escape"))?);
                }
                Some((at, _)) => return Err(err(at, "unknown escape")),
                None => return Err(err(at, "unterminated string")),
            },
            c if (c as u32) < 0x20 => return Err(err(at, "control character in string")),
            c => out.push(c),
        }
    }
    Err(ParseError {
        position: start,
        message: "unterminated string".to_owned(),
    })
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(at, _)| *at)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            position: self.position(),
            message: message.into(),
        })
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn or(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut left = self.and(depth)?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and(depth)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut left = self.primary(depth)?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.primary(depth)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, ParseError> {
        match self.peek() {
            Some(Token::Open) => {
                if depth >= MAX_DEPTH {
                    return self.error(format!("parentheses nested deeper than {MAX_DEPTH}"));
                }
                self.pos += 1;
                let inner = self.or(depth + 1)?;
                if self.peek() != Some(&Token::Close) {
                    return self.error("expected ')'");
                }
                self.pos += 1;
                Ok(inner)
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("not") => {
                self.error("the 'not' operator is not supported")
            }
            Some(Token::Word(w))
                if w.eq_ignore_ascii_case("and") || w.eq_ignore_ascii_case("or") =>
            {
                self.error(format!("'{w}' needs an expression before it"))
            }
            Some(Token::Word(_)) => self.comparison(),
            Some(other) => {
                let other = other.clone();
                self.error(format!("expected an attribute name, found {other:?}"))
            }
            None => self.error("expression ends too early"),
        }
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let Some(Token::Word(attribute)) = self.peek().cloned() else {
            return self.error("expected an attribute name");
        };
        if attribute.starts_with('.') || attribute.ends_with('.') || attribute.contains("..") {
            return self.error(format!("bad attribute name {attribute:?}"));
        }
        self.pos += 1;
        let op = match self.peek() {
            Some(Token::Word(w)) => match Op::parse(w) {
                Some(op) => op,
                None => return self.error(format!("unknown operator {w:?}")),
            },
            _ => return self.error(format!("expected an operator after {attribute:?}")),
        };
        self.pos += 1;
        if op == Op::Pr {
            return Ok(Expr::Compare {
                attribute,
                op,
                value: None,
            });
        }
        let value = match self.peek() {
            Some(Token::Str(s)) => Literal::String(s.clone()),
            Some(Token::Number(n)) => Literal::Number(*n),
            Some(Token::Word(w)) if w == "true" => Literal::Bool(true),
            Some(Token::Word(w)) if w == "false" => Literal::Bool(false),
            Some(Token::Word(w)) if w == "null" => Literal::Null,
            _ => return self.error("expected a value (a quoted string, number, true or false)"),
        };
        self.pos += 1;
        Ok(Expr::Compare {
            attribute,
            op,
            value: Some(value),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(attribute: &str, op: Op, value: &str) -> Expr {
        Expr::Compare {
            attribute: attribute.into(),
            op,
            value: Some(Literal::String(value.into())),
        }
    }

    #[test]
    fn simple_and_precedence() {
        assert_eq!(
            parse(r#"status eq "ACTIVE""#).unwrap(),
            cmp("status", Op::Eq, "ACTIVE")
        );
        // a or b and c == a or (b and c)
        let e = parse(
            r#"status eq "A" or status eq "B" AND lastUpdated gt "2020-01-01T00:00:00.000Z""#,
        )
        .unwrap();
        assert_eq!(
            e,
            Expr::Or(
                Box::new(cmp("status", Op::Eq, "A")),
                Box::new(Expr::And(
                    Box::new(cmp("status", Op::Eq, "B")),
                    Box::new(cmp("lastUpdated", Op::Gt, "2020-01-01T00:00:00.000Z"))
                ))
            )
        );
        let e = parse(r#"(status EQ "A" or status eq "B") and profile.login sw "x""#).unwrap();
        assert!(matches!(e, Expr::And(ref l, _) if matches!(**l, Expr::Or(..))));
    }

    #[test]
    fn literals() {
        assert_eq!(
            parse(r#"profile.lastName eq "Nguy\u1ec5n \"x\"""#).unwrap(),
            cmp("profile.lastName", Op::Eq, "Nguyễn \"x\"")
        );
        assert_eq!(
            parse("profile.age gt 3.5").unwrap(),
            Expr::Compare {
                attribute: "profile.age".into(),
                op: Op::Gt,
                value: Some(Literal::Number(3.5))
            }
        );
        assert!(matches!(
            parse("profile.mobilePhone pr").unwrap(),
            Expr::Compare {
                op: Op::Pr,
                value: None,
                ..
            }
        ));
    }

    #[test]
    fn errors_name_a_position() {
        for (bad, at) in [
            ("", 0),
            ("status", 6),
            ("status eq", 9),
            (r#"status xx "A""#, 7),
            (r#"status eq "A" and"#, 17),
            (r#"status eq "A" status eq "B""#, 14),
            (r#"(status eq "A""#, 14),
            (r#"not status eq "A""#, 0),
            (r#"status eq "A"#, 10),
            ("status eq 'A'", 10),
            (r#"and status eq "A""#, 0),
            (r#"status eq "\q""#, 12),
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.position, at, "{bad:?}: {err}");
        }
    }

    #[test]
    fn limits_hold() {
        let deep = format!("{}status eq \"A\"{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).unwrap_err().message.contains("nested"));
        let long = format!("status eq \"{}\"", "a".repeat(MAX_LEN));
        assert!(parse(&long).is_err());
        let ok = format!("{}status eq \"A\"{}", "(".repeat(10), ")".repeat(10));
        assert!(parse(&ok).is_ok());
        // Arbitrary bytes never panic.
        for s in [
            "\u{0}",
            "é",
            "((((",
            "\"\\u12",
            "-",
            "1e",
            ")(",
            "a.b.",
            "a..b eq 1",
        ] {
            let _ = parse(s);
        }
    }
}
