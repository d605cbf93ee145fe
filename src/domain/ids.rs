//! Typed identifiers. Every id is 22 base62 characters made by `random::id`, stored as
//! text; the types keep a user id from being passed where an account id belongs.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::random;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh random id.
            pub fn generate() -> Self {
                $name(random::id())
            }

            /// An id as it came from outside (a URL, a form, a header). Whether it names
            /// anything is for the database to say.
            // Ids that only ever come from a path (serde) need no constructor from text.
            #[allow(dead_code)]
            pub fn from_raw(raw: impl Into<String>) -> Self {
                $name(raw.into())
            }

            // Not every id type is read as text outside SQL and templates.
            #[allow(dead_code)]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        // In the OpenAPI document an id is a string.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                <String as utoipa::PartialSchema>::schema()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

id_type!(
    /// A user: a person who signs in (or the synthetic legacy-key user).
    UserId
);
id_type!(
    /// An account (Fastly's "customer").
    AccountId
);
id_type!(
    /// A token's public id (not its secret).
    TokenId
);
id_type!(
    /// A service of an account.
    ServiceId
);
id_type!(
    /// A pending invitation to join an account (not its link's secret).
    InvitationId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_print_plainly() {
        let (a, b) = (UserId::generate(), UserId::generate());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 22);
        assert_eq!(AccountId::from_raw("abc").to_string(), "abc");
        assert_eq!(format!("{:?}", TokenId::from_raw("t1")), "TokenId(t1)");
        assert_eq!(
            serde_json::to_string(&ServiceId::from_raw("s")).unwrap(),
            "\"s\""
        );
    }
}
