//! The User object of the Okta Management API (`components.schemas.User`), read leniently:
//! unknown fields are ignored, missing or `null` fields become `None`, unknown statuses are
//! kept as [`UserStatus::Unknown`]. Okta's compatibility rules allow all three.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
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
/// nullable or omitted dates are `None`. The HAL parts (`credentials`, `_embedded`,
/// `_links`) are kept as raw JSON because the report does not need them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The user id (`00u...`).
    pub id: String,
    /// Lifecycle status.
    pub status: UserStatus,
    /// When the user was created.
    #[serde(default)]
    pub created: Option<DateTime<Utc>>,
    /// When the status last became `ACTIVE`.
    #[serde(default)]
    pub activated: Option<DateTime<Utc>>,
    /// When the status last changed.
    #[serde(default)]
    pub status_changed: Option<DateTime<Utc>>,
    /// Last sign-in.
    #[serde(default)]
    pub last_login: Option<DateTime<Utc>>,
    /// Last change of any kind.
    #[serde(default)]
    pub last_updated: Option<DateTime<Utc>>,
    /// Last password change.
    #[serde(default)]
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
    pub credentials: Option<Value>,
    /// The realm the user belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm_id: Option<String>,
    /// `_embedded` resources.
    #[serde(default, rename = "_embedded", skip_serializing_if = "Option::is_none")]
    pub embedded: Option<Value>,
    /// `_links` (in lists, only `self`).
    #[serde(default, rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Value>,
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
            alice.credentials.as_ref().unwrap()["provider"]["type"],
            "OKTA"
        );
        assert!(alice.links.as_ref().unwrap()["self"]["href"]
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
            locked.credentials.as_ref().unwrap()["emails"][0]["status"],
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
    fn every_documented_status_parses_to_itself() {
        for status in UserStatus::ALL {
            let json = format!("\"{}\"", status.as_str());
            let parsed: UserStatus = serde_json::from_str(&json).unwrap();
            assert_eq!(parsed, status);
            assert_eq!(serde_json::to_string(&parsed).unwrap(), json);
        }
    }
}
