//! Every login of a user, indexed in Redis, so that "end every login of this user" (and, for
//! sessions, "this user's roles changed") reaches all of them at once. Both models need the
//! index; what a login *is* differs: a session (`session:<id>`) for the session server, a
//! refresh-token family (`rtf:<id>`) for the token server. The index is the same: a set
//! `<index prefix><user id>` of login ids, expiring after the longest a login can live.
//!
//! The pieces are Lua fragments, spliced into each server's own scripts, so that indexing a
//! login happens in the same atomic step as creating it.

/// One server's index: where the sets live and where each login's own key lives.
#[derive(Debug, Clone, Copy)]
pub struct LoginIndex {
    /// `usess:` or `ufam:`: the set of a user's login ids is `<index_prefix><user id>`.
    pub index_prefix: &'static str,
    /// `session:` or `rtf:`: login `id` lives at `<login_prefix><id>`.
    pub login_prefix: &'static str,
}

/// An index is pruned of ended logins once it holds this many ids: logins that simply
/// expired never leave it otherwise.
const PRUNE_AT: usize = 64;

impl LoginIndex {
    pub fn index_key(&self, user_id: &str) -> String {
        format!("{}{user_id}", self.index_prefix)
    }

    pub fn login_key(&self, id: &str) -> String {
        format!("{}{id}", self.login_prefix)
    }

    /// Lua: adds the login id `ARGV[member]` to the index `KEYS[index]` and gives the index
    /// `ARGV[ttl]` seconds to live; first drops the ids whose login key is gone, once the
    /// index holds `PRUNE_AT` of them.
    pub fn add_lua(&self, index: usize, member: usize, ttl: usize) -> String {
        let login = self.login_prefix;
        format!(
            r#"
if redis.call('SCARD', KEYS[{index}]) >= {PRUNE_AT} then
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[{index}])) do
    if redis.call('EXISTS', '{login}' .. id) == 0 then redis.call('SREM', KEYS[{index}], id) end
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
        let login = self.login_prefix;
        format!(
            r#"
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + redis.call('DEL', '{login}' .. id)
end
redis.call('DEL', KEYS[1])
return n
"#
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
    fn keys_and_fragments_name_the_servers_own_prefixes() {
        assert_eq!(SESSIONS.index_key("u1"), "usess:u1");
        assert_eq!(SESSIONS.login_key("abc"), "session:abc");
        let add = SESSIONS.add_lua(2, 1, 8);
        assert!(add.contains("'session:' .. id"), "{add}");
        assert!(
            add.contains("redis.call('SADD', KEYS[2], ARGV[1])"),
            "{add}"
        );
        assert!(
            add.contains("redis.call('EXPIRE', KEYS[2], ARGV[8])"),
            "{add}"
        );
        assert!(SESSIONS.end_all_script().contains("'session:' .. id"));
    }
}
