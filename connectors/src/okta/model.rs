//! The User object of the Okta Management API (`components.schemas.User`), read leniently:
//! unknown fields are ignored, missing or `null` fields become `None`, unknown statuses are
//! kept as [`UserStatus::Unknown`]. Okta's compatibility rules allow all three.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The lifecycle status of a user (`UserStatus` in the spec), plus [`UserStatus::Unknown`]
/// for values Okta may add later (they are kept, not rejected).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UserStatus {
    /// `STAGED`: created, not yet activated.
    Staged,
    /// `PROVISIONED`: activated, the user has not set a password yet.
    Provisioned,
    /// `ACTIVE`.
    Active,
    /// `RECOVERY`: a password reset is in progress.
    Recovery,
    /// `PASSWORD_EXPIRED`.
    PasswordExpired,
    /// `LOCKED_OUT`: too many failed sign-in attempts.
    LockedOut,
    /// `SUSPENDED` by an admin.
    Suspended,
    /// `DEPROVISIONED` (deactivated). Left out of the plain list by Okta.
    Deprovisioned,
    /// A status this code does not know, kept verbatim.
    Unknown(String),
}

impl UserStatus {
    /// The eight statuses the spec documents, in lifecycle order.
    pub const ALL: [UserStatus; 8] = [
        UserStatus::Staged,
        UserStatus::Provisioned,
        UserStatus::Active,
        UserStatus::Recovery,
        UserStatus::PasswordExpired,
        UserStatus::LockedOut,
        UserStatus::Suspended,
        UserStatus::Deprovisioned,
    ];

    /// The status as Okta spells it (`"LOCKED_OUT"`).
    pub fn as_str(&self) -> &str {
        match self {
            UserStatus::Staged => "STAGED",
            UserStatus::Provisioned => "PROVISIONED",
            UserStatus::Active => "ACTIVE",
            UserStatus::Recovery => "RECOVERY",
            UserStatus::PasswordExpired => "PASSWORD_EXPIRED",
            UserStatus::LockedOut => "LOCKED_OUT",
            UserStatus::Suspended => "SUSPENDED",
            UserStatus::Deprovisioned => "DEPROVISIONED",
            UserStatus::Unknown(other) => other,
        }
    }

    /// Reads Okta's spelling; anything else becomes [`UserStatus::Unknown`].
    pub fn parse(value: &str) -> Self {
        match value {
            "STAGED" => UserStatus::Staged,
            "PROVISIONED" => UserStatus::Provisioned,
            "ACTIVE" => UserStatus::Active,
            "RECOVERY" => UserStatus::Recovery,
            "PASSWORD_EXPIRED" => UserStatus::PasswordExpired,
            "LOCKED_OUT" => UserStatus::LockedOut,
            "SUSPENDED" => UserStatus::Suspended,
            "DEPROVISIONED" => UserStatus::Deprovisioned,
            other => UserStatus::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for UserStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for UserStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StatusVisitor;
        impl Visitor<'_> for StatusVisitor {
            type Value = UserStatus;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a user status string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UserStatus, E> {
                Ok(UserStatus::parse(v))
            }
        }
        deserializer.deserialize_str(StatusVisitor)
    }
}

/// The user type reference (`type: {"id": "oty..."}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserType {
    /// The user type id.
    #[serde(default)]
    pub id: Option<String>,
}

/// A user as listed by `GET /api/v1/users`. Every documented top-level field is here;
/// nullable or omitted dates are `None`. The nested parts the report does not need
/// (`credentials`, `_embedded`, `_links`) are kept as unparsed JSON text ([`RawJson`]):
/// building `serde_json::Value` trees for them more than halved parsing speed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The user id (`00u...`).
    pub id: String,
    /// Lifecycle status.
    pub status: UserStatus,
    /// When the user was created.
    #[serde(default, deserialize_with = "okta_date")]
    pub created: Option<DateTime<Utc>>,
    /// When the status last became `ACTIVE`.
    #[serde(default, deserialize_with = "okta_date")]
    pub activated: Option<DateTime<Utc>>,
    /// When the status last changed.
    #[serde(default, deserialize_with = "okta_date")]
    pub status_changed: Option<DateTime<Utc>>,
    /// Last sign-in.
    #[serde(default, deserialize_with = "okta_date")]
    pub last_login: Option<DateTime<Utc>>,
    /// Last change of any kind.
    #[serde(default, deserialize_with = "okta_date")]
    pub last_updated: Option<DateTime<Utc>>,
    /// Last password change.
    #[serde(default, deserialize_with = "okta_date")]
    pub password_changed: Option<DateTime<Utc>>,
    /// Target of an asynchronous transition in progress (`ACTIVE`, `DEPROVISIONED`,
    /// `PROVISIONED`); only present while transitioning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transitioning_to_status: Option<UserStatus>,
    /// The user type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub user_type: Option<UserType>,
    /// Profile attributes.
    #[serde(default)]
    pub profile: UserProfile,
    /// `credentials` (password, provider, recovery question), absent when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<RawJson>,
    /// The realm the user belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm_id: Option<String>,
    /// `_embedded` resources.
    #[serde(default, rename = "_embedded", skip_serializing_if = "Option::is_none")]
    pub embedded: Option<RawJson>,
    /// `_links` (in lists, only `self`).
    #[serde(default, rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<RawJson>,
}

impl User {
    /// A user with an id and a status and nothing else, e.g. for test doubles.
    pub fn new(id: impl Into<String>, status: UserStatus) -> Self {
        User {
            id: id.into(),
            status,
            created: None,
            activated: None,
            status_changed: None,
            last_login: None,
            last_updated: None,
            password_changed: None,
            transitioning_to_status: None,
            user_type: None,
            profile: UserProfile::default(),
            credentials: None,
            realm_id: None,
            embedded: None,
            links: None,
        }
    }
}

/// A JSON value kept as text, parsed only on demand ([`RawJson::parse`]). Works with
/// serde_json (text, readers and `Value`); other serde formats cannot carry it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// The JSON text, as received.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Parses the text into `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.0.get())
    }

    /// The value as a `serde_json::Value` (`Null` if it cannot be parsed, which cannot
    /// happen for text that came from a JSON parser).
    pub fn to_value(&self) -> Value {
        self.parse().unwrap_or(Value::Null)
    }

    /// Wraps a `serde_json::Value`.
    pub fn from_value(value: &Value) -> serde_json::Result<Self> {
        serde_json::value::to_raw_value(value).map(RawJson)
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get() || self.to_value() == other.to_value()
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

/// Reads Okta's `2022-04-04T15:56:05.000Z` quickly, anything else RFC 3339 through chrono,
/// and `null` as `None`.
fn okta_date<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    struct DateVisitor;
    impl Visitor<'_> for DateVisitor {
        type Value = Option<DateTime<Utc>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an RFC 3339 date-time or null")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if let Some(date) = parse_okta_date(v) {
                return Ok(Some(date));
            }
            DateTime::parse_from_rfc3339(v)
                .map(|d| Some(d.with_timezone(&Utc)))
                .map_err(|e| E::custom(format!("invalid date {v:?}: {e}")))
        }
    }
    deserializer.deserialize_any(DateVisitor)
}

/// The exact shape Okta sends: `YYYY-MM-DDTHH:MM:SS.sssZ`.
fn parse_okta_date(v: &str) -> Option<DateTime<Utc>> {
    let b = v.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    let time = date.and_hms_milli_opt(num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?)?;
    Some(time.and_utc())
}

/// Declares [`UserProfile`] with its standard attributes and a hand-written, allocation-lean
/// `Deserialize` (serde's `flatten` would buffer every attribute first).
macro_rules! user_profile {
    ($( $(#[$doc:meta])* $field:ident => $json:literal ),* $(,)?) => {
        /// The user's profile: the standard attributes typed, custom attributes in
        /// [`UserProfile::extra`]. Every attribute may be missing or `null`.
        #[derive(Clone, Debug, Default, PartialEq, Serialize)]
        pub struct UserProfile {
            $(
                $(#[$doc])*
                #[serde(rename = $json, skip_serializing_if = "Option::is_none")]
                pub $field: Option<String>,
            )*
            /// Custom attributes (strings, numbers, booleans, arrays), by name.
            #[serde(flatten)]
            pub extra: Map<String, Value>,
        }

        #[allow(non_camel_case_types)]
        enum ProfileKey {
            $( $field, )*
            Other(String),
        }

        impl<'de> Deserialize<'de> for ProfileKey {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct KeyVisitor;
                impl Visitor<'_> for KeyVisitor {
                    type Value = ProfileKey;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a profile attribute name")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<ProfileKey, E> {
                        Ok(match v {
                            $( $json => ProfileKey::$field, )*
                            other => ProfileKey::Other(other.to_owned()),
                        })
                    }
                }
                deserializer.deserialize_identifier(KeyVisitor)
            }
        }

        impl<'de> Deserialize<'de> for UserProfile {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ProfileVisitor;
                impl<'de> Visitor<'de> for ProfileVisitor {
                    type Value = UserProfile;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a user profile object")
                    }
                    fn visit_unit<E: de::Error>(self) -> Result<UserProfile, E> {
                        Ok(UserProfile::default())
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UserProfile, A::Error> {
                        let mut profile = UserProfile::default();
                        while let Some(key) = map.next_key::<ProfileKey>()? {
                            match key {
                                $( ProfileKey::$field => profile.$field = map.next_value()?, )*
                                ProfileKey::Other(name) => {
                                    let value: Value = map.next_value()?;
                                    profile.extra.insert(name, value);
                                }
                            }
                        }
                        Ok(profile)
                    }
                }
                deserializer.deserialize_any(ProfileVisitor)
            }
        }
    };
}

user_profile! {
    /// Unique sign-in name (usually an email address).
    login => "login",
    /// Primary email.
    email => "email",
    /// Secondary email (Okta sends `null` or `""` when unset).
    second_email => "secondEmail",
    /// Given name.
    first_name => "firstName",
    /// Family name.
    last_name => "lastName",
    /// Middle name.
    middle_name => "middleName",
    /// Honorific prefix (`Dr.`).
    honorific_prefix => "honorificPrefix",
    /// Honorific suffix (`Jr.`).
    honorific_suffix => "honorificSuffix",
    /// Job title.
    title => "title",
    /// Display name.
    display_name => "displayName",
    /// Nickname.
    nick_name => "nickName",
    /// Profile page URL.
    profile_url => "profileUrl",
    /// Primary phone.
    primary_phone => "primaryPhone",
    /// Mobile phone.
    mobile_phone => "mobilePhone",
    /// Street address.
    street_address => "streetAddress",
    /// City.
    city => "city",
    /// State or region.
    state => "state",
    /// ZIP or postal code.
    zip_code => "zipCode",
    /// ISO 3166-1 country code.
    country_code => "countryCode",
    /// Mailing address.
    postal_address => "postalAddress",
    /// Preferred language.
    preferred_language => "preferredLanguage",
    /// Locale (`en_US`).
    locale => "locale",
    /// Time zone.
    timezone => "timezone",
    /// User type (a profile attribute, unrelated to [`User::user_type`]).
    user_type => "userType",
    /// Employee number.
    employee_number => "employeeNumber",
    /// Cost center.
    cost_center => "costCenter",
    /// Organization.
    organization => "organization",
    /// Division.
    division => "division",
    /// Department.
    department => "department",
    /// Manager's id.
    manager_id => "managerId",
    /// Manager's name.
    manager => "manager",
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like the spec's `ListUsersResponse` / `ListUsersSearchResponse` /
    /// `ListUsersFilterResponse` examples (values made up).
    const PAGE: &str = r#"[
      {
        "id": "00u1aaaaaaaaaaaaaaa1",
        "status": "ACTIVE",
        "created": "2022-04-04T15:56:05.000Z",
        "activated": null,
        "statusChanged": null,
        "lastLogin": "2022-05-04T19:50:52.000Z",
        "lastUpdated": "2022-05-05T18:15:44.000Z",
        "passwordChanged": "2022-04-04T16:00:22.000Z",
        "type": { "id": "oty1aaaaaaaaaaaaaaa1" },
        "profile": {
          "firstName": "Zoë", "lastName": "Łukasiewicz", "mobilePhone": null,
          "secondEmail": null, "login": "zoe@example.com", "email": "zoe@example.com",
          "costCenter": "CC-7", "badgeNumber": 42, "groupsAttr": ["a", "b"]
        },
        "credentials": { "password": {}, "provider": { "type": "OKTA", "name": "OKTA" } },
        "_links": { "self": { "href": "https://example.okta.com/api/v1/users/00u1aaaaaaaaaaaaaaa1" } }
      },
      {
        "id": "00u2bbbbbbbbbbbbbbb2",
        "status": "STAGED",
        "created": "2023-01-02T03:04:05.000Z",
        "activated": null,
        "statusChanged": null,
        "lastLogin": null,
        "lastUpdated": "2023-01-02T03:04:05.000Z",
        "passwordChanged": null,
        "type": { "id": "oty1aaaaaaaaaaaaaaa1" },
        "profile": { "firstName": "José", "lastName": "Nguyễn", "secondEmail": "",
                     "login": "jose@example.com", "email": "jose@example.com" }
      },
      {
        "id": "00u3ccccccccccccccc3",
        "status": "LOCKED_OUT",
        "created": "2020-10-22T15:15:30.000Z",
        "lastUpdated": "2020-10-22T16:09:13.000Z",
        "profile": { "login": "l@example.com" },
        "credentials": { "password": {}, "emails": [ { "value": "l@example.com", "status": "VERIFIED", "type": "PRIMARY" } ],
                         "provider": { "type": "IMPORT", "name": "IMPORT" } },
        "realmId": "guo1bfiNtSnZYILxO0g4",
        "someFieldAddedIn2030": { "x": 1 }
      },
      {
        "id": "00u4ddddddddddddddd4",
        "status": "ACTIVATING",
        "transitioningToStatus": "ACTIVE",
        "profile": null
      }
    ]"#;

    #[test]
    fn parses_spec_shaped_users() {
        let users: Vec<User> = serde_json::from_str(PAGE).unwrap();
        assert_eq!(users.len(), 4);

        let alice = &users[0];
        assert_eq!(alice.status, UserStatus::Active);
        assert_eq!(
            alice.created.unwrap().to_rfc3339(),
            "2022-04-04T15:56:05+00:00"
        );
        assert!(alice.activated.is_none() && alice.status_changed.is_none());
        assert!(alice.last_login.is_some());
        assert_eq!(
            alice.user_type.as_ref().unwrap().id.as_deref(),
            Some("oty1aaaaaaaaaaaaaaa1")
        );
        assert_eq!(alice.profile.first_name.as_deref(), Some("Zoë"));
        assert_eq!(alice.profile.last_name.as_deref(), Some("Łukasiewicz"));
        assert_eq!(alice.profile.cost_center.as_deref(), Some("CC-7"));
        assert!(alice.profile.mobile_phone.is_none());
        assert_eq!(alice.profile.extra["badgeNumber"], 42);
        assert_eq!(alice.profile.extra["groupsAttr"][1], "b");
        assert_eq!(alice.profile.extra.len(), 2);
        assert_eq!(
            alice.credentials.as_ref().unwrap().to_value()["provider"]["type"],
            "OKTA"
        );
        assert!(alice.links.as_ref().unwrap().to_value()["self"]["href"]
            .as_str()
            .unwrap()
            .ends_with("00u1aaaaaaaaaaaaaaa1"));

        let staged = &users[1];
        assert_eq!(staged.status, UserStatus::Staged);
        assert_eq!(staged.profile.second_email.as_deref(), Some(""));
        assert!(staged.credentials.is_none() && staged.links.is_none());
        assert!(staged.last_login.is_none() && staged.password_changed.is_none());

        let locked = &users[2];
        assert_eq!(locked.status, UserStatus::LockedOut);
        assert!(locked.activated.is_none(), "missing means None");
        assert_eq!(locked.realm_id.as_deref(), Some("guo1bfiNtSnZYILxO0g4"));
        assert_eq!(
            locked.credentials.as_ref().unwrap().to_value()["emails"][0]["status"],
            "VERIFIED"
        );

        let future = &users[3];
        assert_eq!(future.status, UserStatus::Unknown("ACTIVATING".into()));
        assert_eq!(future.status.as_str(), "ACTIVATING");
        assert_eq!(future.transitioning_to_status, Some(UserStatus::Active));
        assert_eq!(future.profile, UserProfile::default());
        assert!(future.created.is_none());
    }

    #[test]
    fn round_trips_through_json() {
        let users: Vec<User> = serde_json::from_str(PAGE).unwrap();
        let text = serde_json::to_string(&users).unwrap();
        assert!(text.contains("\"badgeNumber\":42"));
        assert!(text.contains("\"_links\""));
        let again: Vec<User> = serde_json::from_str(&text).unwrap();
        assert_eq!(users, again);
    }

    #[test]
    fn rejects_what_is_not_a_user() {
        assert!(serde_json::from_str::<Vec<User>>(r#"[{"status":"ACTIVE"}]"#).is_err());
        assert!(serde_json::from_str::<Vec<User>>(r#"[{"id":"x","status":3}]"#).is_err());
        assert!(serde_json::from_str::<Vec<User>>(r#"{"id":"x"}"#).is_err());
        assert!(serde_json::from_str::<Vec<User>>(
            r#"[{"id":"x","status":"ACTIVE","created":"yesterday"}]"#
        )
        .is_err());
    }

    #[test]
    fn dates_fast_path_agrees_with_chrono_and_other_forms_still_parse() {
        let parse = |v: &str| -> Result<Option<DateTime<Utc>>, serde_json::Error> {
            let json = format!(r#"{{"id":"x","status":"ACTIVE","created":{v}}}"#);
            serde_json::from_str::<User>(&json).map(|u| u.created)
        };
        for text in [
            "2022-04-04T15:56:05.000Z",
            "1999-12-31T23:59:59.999Z",
            "2024-02-29T00:00:00.123Z",
        ] {
            let expected = DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc);
            assert_eq!(parse_okta_date(text), Some(expected));
            assert_eq!(parse(&format!("\"{text}\"")).unwrap(), Some(expected));
        }
        let offset = parse(r#""2022-04-04T17:56:05+02:00""#).unwrap().unwrap();
        assert_eq!(offset.to_rfc3339(), "2022-04-04T15:56:05+00:00");
        assert!(parse(r#""2022-04-04T15:56:05Z""#).unwrap().is_some());
        assert_eq!(parse("null").unwrap(), None);
        for bad in [
            r#""2023-02-29T00:00:00.000Z""#,
            r#""2022-13-01T00:00:00.000Z""#,
            r#""soon""#,
            "12",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn raw_json_round_trips_through_values() {
        let value = serde_json::json!({"provider": {"type": "OKTA"}});
        let raw = RawJson::from_value(&value).unwrap();
        assert_eq!(raw.to_value(), value);
        let again: RawJson = serde_json::from_value(serde_json::to_value(&raw).unwrap()).unwrap();
        assert_eq!(again, raw);
        let spaced: RawJson =
            serde_json::from_str(r#"{ "provider" : { "type" : "OKTA" } }"#).unwrap();
        assert_eq!(spaced, raw, "equality is by value, not by text");
    }

    #[test]
    fn every_documented_status_parses_to_itself() {
        for status in UserStatus::ALL {
            let json = format!("\"{}\"", status.as_str());
            let parsed: UserStatus = serde_json::from_str(&json).unwrap();
            assert_eq!(parsed, status);
            assert_eq!(serde_json::to_string(&parsed).unwrap(), json);
        }
    }
}
