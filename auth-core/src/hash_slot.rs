//! Where each Redis key is placed, so that the same keys work on one Redis and on a Redis
//! Cluster.
//!
//! A cluster spreads keys over 16384 hash slots and runs a script only when every key it
//! touches lives in one slot. Redis hashes only the part of a key between the first `{` and
//! the next `}` when there is one, so every key of one user (the user record, each login,
//! the index of logins) carries that user's tag in braces, and the scripts that create,
//! rotate and end logins stay atomic. On a single Redis the braces are just characters.
//!
//! The tag is not the username: a login id (a session id in a cookie, a refresh-token family
//! in a JWT) starts with its user's tag, and should not say who logged in. It is 16 bits of a
//! hash of the username, so it tells an observer next to nothing and still spreads users
//! over every slot.

use std::fmt;

use sha2::{Digest, Sha256};

/// The hash-slot tag of one user: four lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserSlot([u8; UserSlot::LEN]);

impl UserSlot {
    /// How many characters a tag has (and how many a login id starts with).
    pub const LEN: usize = 4;

    pub fn of(username: &str) -> Self {
        let digest = Sha256::digest(username.as_bytes());
        let hex = format!("{:02x}{:02x}", digest[0], digest[1]);
        let mut tag = [0u8; Self::LEN];
        tag.copy_from_slice(hex.as_bytes());
        Self(tag)
    }

    pub fn as_str(&self) -> &str {
        // Always ASCII hex digits, written by `of`.
        std::str::from_utf8(&self.0).unwrap_or("0000")
    }
}

impl fmt::Display for UserSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `user:{<tag>}<username>`: the user record, in its user's slot.
pub fn user_key(username: &str) -> String {
    format!("user:{{{}}}{username}", UserSlot::of(username))
}

/// The failed-login counters (per username and client, per username, per client) are
/// checked together in one script, and one of them belongs to no user: all of them share
/// the one slot `{throttle}`. Logins are few (password hashing bounds them), so that slot's
/// primary carries little.
pub const THROTTLE_PREFIX: &str = "loginfail:{throttle}:";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_four_hex_digits_and_the_same_for_the_same_name() {
        let a = UserSlot::of("alice");
        assert_eq!(a, UserSlot::of("alice"));
        assert_eq!(a.as_str().len(), UserSlot::LEN);
        assert!(a.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(user_key("alice").starts_with(&format!("user:{{{a}}}")));
        // 200 names spread over many tags (a constant tag would put every user in one slot).
        let tags: std::collections::HashSet<_> =
            (0..200).map(|i| UserSlot::of(&format!("u{i}"))).collect();
        assert!(tags.len() > 190, "{} distinct tags", tags.len());
    }

    #[test]
    fn a_key_is_hashed_on_its_tag_only() {
        // Redis's rule: the first `{`, up to the next `}`. A username with braces (login
        // accepts any name) comes after the tag, so it cannot move the user's slot.
        let key = user_key("x{y}z");
        let open = key.find('{').unwrap();
        let close = open + key[open..].find('}').unwrap();
        assert_eq!(&key[open + 1..close], UserSlot::of("x{y}z").as_str());
    }
}
