//! The email value and its MIME form (text + HTML alternative, CID inline images, attachments).

use std::fmt;

use lettre::message::{
    header::ContentType, Attachment as MimeAttachment, Body, Mailbox, MultiPart, SinglePart,
};
use lettre::Message;

use super::{AddressField, Error};

/// An email to send: addresses as text (validated when the message is built), a subject, a plain
/// text body, an optional HTML body, inline images and attachments.
///
/// Each entry of `to`, `cc` and `bcc` is one address (`a@x.org` or `Name <a@x.org>`); use
/// [`parse_address_list`] to split a comma-separated list first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Email {
    /// The sender, `a@x.org` or `Name <a@x.org>`.
    pub from: String,
    /// `To` recipients.
    pub to: Vec<String>,
    /// `Cc` recipients.
    pub cc: Vec<String>,
    /// Blind copies: they receive the message but no other recipient sees them.
    pub bcc: Vec<String>,
    /// The subject (non-ASCII text is encoded as RFC 2047 words).
    pub subject: String,
    /// The plain-text body, shown by clients that do not render HTML.
    pub text: String,
    /// The HTML body; empty means a text-only message. Reference inline images as `cid:<content_id>`.
    pub html: String,
    /// Images shown inside the HTML body.
    pub inline_images: Vec<InlineImage>,
    /// Files attached to the message.
    pub attachments: Vec<Attachment>,
}

/// An image that the HTML body shows with `<img src="cid:CONTENT_ID">`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct InlineImage {
    /// The content id, without angle brackets (`chart`, `logo@flowkit`).
    pub content_id: String,
    /// The MIME type, e.g. `image/png`.
    pub content_type: String,
    /// The image file's bytes.
    pub bytes: Vec<u8>,
}

/// A file attached to an email.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Attachment {
    /// The file name shown to the recipient.
    pub filename: String,
    /// The MIME type, e.g. `text/csv`.
    pub content_type: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for InlineImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlineImage")
            .field("content_id", &self.content_id)
            .field("content_type", &self.content_type)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .finish()
    }
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .finish()
    }
}

/// Whether the built message keeps its `Bcc` header.
///
/// SMTP delivers to the envelope recipients, so the header must go ([`BccHeader::Omit`]): every
/// recipient would see it otherwise. The Gmail API and Graph's MIME mode read the recipients from
/// the headers, so they need [`BccHeader::Keep`] (and strip the header themselves).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BccHeader {
    /// Leave the `Bcc` header out.
    Omit,
    /// Keep the `Bcc` header in the message.
    Keep,
}

/// A message built from an [`Email`], with what the transports need besides the bytes.
pub(crate) struct Built {
    pub(crate) message: Message,
    pub(crate) message_id: String,
    pub(crate) from: Mailbox,
    /// To, Cc and Bcc recipients, duplicates removed, in that order.
    pub(crate) recipients: Vec<Mailbox>,
}

impl Email {
    /// The message as RFC 5322 bytes (CRLF line ends), without a `Bcc` header.
    pub fn to_mime(&self) -> Result<Vec<u8>, Error> {
        Ok(self.message(BccHeader::Omit)?.formatted())
    }

    /// The message as a lettre [`Message`]: `multipart/mixed` (attachments) around
    /// `multipart/related` (inline images) around `multipart/alternative` (text, HTML); layers
    /// with nothing to hold are left out. Sets `Date` and a fresh `Message-ID`.
    pub fn message(&self, bcc: BccHeader) -> Result<Message, Error> {
        Ok(self.build(bcc)?.message)
    }

    pub(crate) fn build(&self, bcc: BccHeader) -> Result<Built, Error> {
        let from = parse_address(AddressField::From, &self.from)?;
        let to = parse_all(AddressField::To, &self.to)?;
        let cc = parse_all(AddressField::Cc, &self.cc)?;
        let blind = parse_all(AddressField::Bcc, &self.bcc)?;
        if to.is_empty() && cc.is_empty() && blind.is_empty() {
            return Err(Error::InvalidEmail {
                reason: "no recipient: to, cc and bcc are all empty".into(),
            });
        }
        let message_id = format!(
            "<{}@{}>",
            uuid::Uuid::new_v4().simple(),
            from.email.domain()
        );

        let mut builder = Message::builder()
            .from(from.clone())
            .subject(self.subject.clone())
            .message_id(Some(message_id.clone()));
        for mailbox in &to {
            builder = builder.to(mailbox.clone());
        }
        for mailbox in &cc {
            builder = builder.cc(mailbox.clone());
        }
        for mailbox in &blind {
            builder = builder.bcc(mailbox.clone());
        }
        if bcc == BccHeader::Keep {
            builder = builder.keep_bcc();
        }

        let message = match self.body()? {
            Part::Single(part) => builder.singlepart(part),
            Part::Multi(part) => builder.multipart(part),
        }
        .map_err(|e| Error::InvalidEmail {
            reason: e.to_string(),
        })?;

        let mut recipients: Vec<Mailbox> = Vec::new();
        for mailbox in to.into_iter().chain(cc).chain(blind) {
            let duplicate = recipients.iter().any(|seen| {
                seen.email
                    .to_string()
                    .eq_ignore_ascii_case(mailbox.email.as_ref())
            });
            if !duplicate {
                recipients.push(mailbox);
            }
        }
        Ok(Built {
            message,
            message_id,
            from,
            recipients,
        })
    }

    fn body(&self) -> Result<Part, Error> {
        let mut body = if self.html.is_empty() {
            Part::Single(SinglePart::plain(self.text.clone()))
        } else {
            Part::Multi(MultiPart::alternative_plain_html(
                self.text.clone(),
                self.html.clone(),
            ))
        };
        if !self.inline_images.is_empty() {
            let mut related = body.into_multipart_of(MultiPart::related());
            for image in &self.inline_images {
                check_content_id(&image.content_id)?;
                let content_type = parse_content_type(&image.content_type, || {
                    format!("inline image {:?}", image.content_id)
                })?;
                related = related.singlepart(
                    MimeAttachment::new_inline(image.content_id.clone())
                        .body(Body::new(image.bytes.clone()), content_type),
                );
            }
            body = Part::Multi(related);
        }
        if !self.attachments.is_empty() {
            let mut mixed = body.into_multipart_of(MultiPart::mixed());
            for attachment in &self.attachments {
                if attachment.filename.trim().is_empty() {
                    return Err(Error::InvalidEmail {
                        reason: "an attachment has an empty file name".into(),
                    });
                }
                let content_type = parse_content_type(&attachment.content_type, || {
                    format!("attachment {:?}", attachment.filename)
                })?;
                mixed = mixed.singlepart(
                    MimeAttachment::new(attachment.filename.clone())
                        .body(Body::new(attachment.bytes.clone()), content_type),
                );
            }
            body = Part::Multi(mixed);
        }
        Ok(body)
    }
}

enum Part {
    Single(SinglePart),
    Multi(MultiPart),
}

impl Part {
    /// Wraps this part as the first part of a new multipart of the given kind.
    fn into_multipart_of(self, builder: lettre::message::MultiPartBuilder) -> MultiPart {
        match self {
            Part::Single(part) => builder.singlepart(part),
            Part::Multi(part) => builder.multipart(part),
        }
    }
}

fn check_content_id(content_id: &str) -> Result<(), Error> {
    let bad = content_id.is_empty()
        || content_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'));
    if bad {
        return Err(Error::InvalidEmail {
            reason: format!(
                "inline image content id {content_id:?} must be non-empty, without spaces, quotes or angle brackets"
            ),
        });
    }
    Ok(())
}

fn parse_content_type(value: &str, what: impl Fn() -> String) -> Result<ContentType, Error> {
    ContentType::parse(value).map_err(|e| Error::InvalidEmail {
        reason: format!("{} has an invalid content type {value:?}: {e}", what()),
    })
}

fn parse_all(field: AddressField, values: &[String]) -> Result<Vec<Mailbox>, Error> {
    values.iter().map(|v| parse_address(field, v)).collect()
}

/// Parses one address (`a@x.org` or `Name <a@x.org>`), naming the field and the value on error.
pub fn parse_address(field: AddressField, value: &str) -> Result<Mailbox, Error> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Error::InvalidAddress {
            field,
            value: value.to_owned(),
            reason: "the address is empty".into(),
        });
    }
    trimmed
        .parse::<Mailbox>()
        .map_err(|e| Error::InvalidAddress {
            field,
            value: value.to_owned(),
            reason: e.to_string(),
        })
}

/// Splits a comma-separated address list (`"a@x.com, Name <b@y.org>"`) and parses each entry.
///
/// Entries are trimmed; commas inside a quoted display name (`"Doe, Jane" <j@x.org>`) do not
/// split. An empty entry (`"a@x.com,,b@y.org"`, a trailing comma) or an invalid address is an
/// [`Error::InvalidAddress`] naming it. A blank list gives an empty `Vec`.
pub fn parse_address_list(list: &str) -> Result<Vec<Mailbox>, Error> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut entries = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in list.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                entries.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    entries.push(current);

    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            if entry.trim().is_empty() {
                Err(Error::InvalidAddress {
                    field: AddressField::List,
                    value: list.to_owned(),
                    reason: format!("entry {} of the list is empty", i + 1),
                })
            } else {
                parse_address(AddressField::List, entry)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_list_splits_trims_and_respects_quotes() {
        let list = parse_address_list(r#" a@x.com , "Doe, Jane" <jane@y.org>,b@z.net "#).unwrap();
        let emails: Vec<String> = list.iter().map(|m| m.email.to_string()).collect();
        assert_eq!(emails, ["a@x.com", "jane@y.org", "b@z.net"]);
        assert_eq!(list[1].name.as_deref(), Some("Doe, Jane"));
        assert!(parse_address_list("  ").unwrap().is_empty());
    }

    #[test]
    fn address_list_names_the_bad_entry() {
        let err = parse_address_list("a@x.com, not-an-address, b@y.org").unwrap_err();
        assert!(
            matches!(&err, Error::InvalidAddress { field: AddressField::List, value, .. } if value == " not-an-address"),
            "{err:?}"
        );
        assert!(err.to_string().contains("not-an-address"), "{err}");

        let err = parse_address_list("a@x.com,,b@y.org").unwrap_err();
        assert!(err.to_string().contains("entry 2"), "{err}");
        let err = parse_address_list("a@x.com,").unwrap_err();
        assert!(err.to_string().contains("entry 2"), "{err}");
    }

    #[test]
    fn bad_address_names_its_field() {
        let email = Email {
            from: "reports@example.com".into(),
            to: vec!["ops@example.com".into()],
            cc: vec!["boss at example.com".into()],
            text: "hi".into(),
            ..Email::default()
        };
        let err = email.to_mime().unwrap_err();
        assert!(
            matches!(&err, Error::InvalidAddress { field: AddressField::Cc, value, .. } if value == "boss at example.com"),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("invalid cc address \"boss at example.com\""),
            "{err}"
        );

        let err = Email {
            from: "".into(),
            ..email.clone()
        }
        .to_mime()
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidAddress {
                    field: AddressField::From,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn no_recipient_is_an_error() {
        let email = Email {
            from: "reports@example.com".into(),
            text: "hi".into(),
            ..Email::default()
        };
        assert!(matches!(email.to_mime(), Err(Error::InvalidEmail { .. })));
    }

    #[test]
    fn bcc_header_only_when_kept() {
        let email = Email {
            from: "reports@example.com".into(),
            to: vec!["ops@example.com".into()],
            bcc: vec!["audit@example.com".into()],
            subject: "s".into(),
            text: "hi".into(),
            ..Email::default()
        };
        let omitted = String::from_utf8(email.to_mime().unwrap()).unwrap();
        assert!(
            !omitted.to_ascii_lowercase().contains("audit@"),
            "{omitted}"
        );
        let kept = email.message(BccHeader::Keep).unwrap().formatted();
        let kept = String::from_utf8(kept).unwrap();
        assert!(kept.contains("Bcc: audit@example.com"), "{kept}");
        let built = email.build(BccHeader::Omit).unwrap();
        let rcpts: Vec<String> = built
            .recipients
            .iter()
            .map(|m| m.email.to_string())
            .collect();
        assert_eq!(rcpts, ["ops@example.com", "audit@example.com"]);
    }
}
