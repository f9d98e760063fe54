//! Every login of a user, indexed in Redis, so that "end every login of this user" (and, for
//! sessions, "this user's roles changed") reaches all of them at once. Both models need the
//! index; what a login *is* differs: a session (`session:<id>`) for the session server, a
//! refresh-token family (`rtf:<id>`) for the token server. The index is the same: a set
//! `<index prefix><user id>` of login ids, expiring after the longest a login can live.
//!
//! The pieces are Lua fragments, spliced into each server's own scripts, so that indexing a
//! login happens in the same atomic step as creating it.

use crate::hash_slot::UserSlot;

/// One server's index: where the sets live and where each login's own key lives.
///
/// Every key is in its user's hash slot (`hash_slot`): a login id starts with its user's
/// tag, and `<prefix>{<tag>}<rest of the id>` is its key, so a script that reaches a
/// login through the index (or the index through a login) stays within one slot.
#[derive(Debug, Clone, Copy)]
pub struct LoginIndex {
    /// `usess:` or `ufam:`: the set of a user's login ids is `<index_prefix>{<tag>}<user id>`.
    pub index_prefix: &'static str,
    /// `session:` or `rtf:`: login `<tag><rest>` lives at `<login_prefix>{<tag>}<rest>`.
    pub login_prefix: &'static str,
}

/// An index is pruned of ended logins once it holds this many ids: logins that simply
/// expired never leave it otherwise.
const PRUNE_AT: usize = 64;

/// A login id's slot tag and the rest; an id too short (or not ASCII) to carry one is all
/// tag, which is a valid key too (of no login).
fn split_tag(id: &str) -> (&str, &str) {
    match (id.get(..UserSlot::LEN), id.get(UserSlot::LEN..)) {
        (Some(tag), Some(rest)) => (tag, rest),
        _ => (id, ""),
    }
}

impl LoginIndex {
    pub fn index_key(&self, slot: UserSlot, user_id: &str) -> String {
        format!("{}{{{slot}}}{user_id}", self.index_prefix)
    }

    pub fn login_key(&self, id: &str) -> String {
        let (tag, rest) = split_tag(id);
        format!("{}{{{tag}}}{rest}", self.login_prefix)
    }

    /// A new login id for the user in `slot`: the tag, then `random`.
    pub fn new_id(slot: UserSlot, random: &str) -> String {
        format!("{slot}{random}")
    }

    /// Lua: `login_key(id)` and `index_key(id, user id)`, the same keys as the methods above
    /// (byte positions: ids are ASCII). Every script that builds a key starts with this.
    pub fn lua_keys(&self) -> String {
        let (login, index, n) = (self.login_prefix, self.index_prefix, UserSlot::LEN);
        format!(
            r#"
local function login_key(id)
  return '{login}{{' .. string.sub(id, 1, {n}) .. '}}' .. string.sub(id, {n} + 1)
end
local function index_key(id, uid)
  return '{index}{{' .. string.sub(id, 1, {n}) .. '}}' .. uid
end
"#
        )
    }

    /// Lua (after `lua_keys`): adds the login id `ARGV[member]` to the index `KEYS[index]`
    /// and gives the index `ARGV[ttl]` seconds to live; first drops the ids whose login key
    /// is gone, once the index holds `PRUNE_AT` of them.
    pub fn add_lua(&self, index: usize, member: usize, ttl: usize) -> String {
        format!(
            r#"
if redis.call('SCARD', KEYS[{index}]) >= {PRUNE_AT} then
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[{index}])) do
    if redis.call('EXISTS', login_key(id)) == 0 then redis.call('SREM', KEYS[{index}], id) end
  end
end
redis.call('SADD', KEYS[{index}], ARGV[{member}])
redis.call('EXPIRE', KEYS[{index}], ARGV[{ttl}])
"#
        )
    }

    /// A whole script. KEYS[1]: the index. Ends every login in it (deletes its key), then
    /// the index; returns how many logins were still there.
    pub fn end_all_script(&self) -> String {
        format!(
            r#"{}
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + redis.call('DEL', login_key(id))
end
redis.call('DEL', KEYS[1])
return n
"#,
            self.lua_keys()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSIONS: LoginIndex = LoginIndex {
        index_prefix: "usess:",
        login_prefix: "session:",
    };

    #[test]
    fn keys_carry_the_users_slot_tag() {
        let slot = UserSlot::of("alice");
        assert_eq!(
            SESSIONS.index_key(slot, "u1"),
            format!("usess:{{{slot}}}u1")
        );
        let id = LoginIndex::new_id(slot, "abc");
        assert_eq!(SESSIONS.login_key(&id), format!("session:{{{slot}}}abc"));
        // Too short to carry a tag: still a key, of no login.
        assert_eq!(SESSIONS.login_key("ab"), "session:{ab}");
        assert_eq!(SESSIONS.login_key("éé"), "session:{éé}");
    }

    #[test]
    fn fragments_build_the_same_keys_in_lua() {
        let lua = SESSIONS.lua_keys();
        assert!(
            lua.contains(
                "return 'session:{' .. string.sub(id, 1, 4) .. '}' .. string.sub(id, 4 + 1)"
            ),
            "{lua}"
        );
        assert!(
            lua.contains("return 'usess:{' .. string.sub(id, 1, 4) .. '}' .. uid"),
            "{lua}"
        );
        let add = SESSIONS.add_lua(2, 1, 8);
        assert!(add.contains("login_key(id)"), "{add}");
        assert!(
            add.contains("redis.call('SADD', KEYS[2], ARGV[1])"),
            "{add}"
        );
        assert!(
            add.contains("redis.call('EXPIRE', KEYS[2], ARGV[8])"),
            "{add}"
        );
        let end_all = SESSIONS.end_all_script();
        assert!(end_all.starts_with(&lua) && end_all.contains("DEL', login_key(id)"));
    }
}
