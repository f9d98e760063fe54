//! The study note's claims (`../shared/CLAIMS.md`) as a type, and the labels a verdict can
//! carry, each with the rule that gives it. A claim id is never a string past this file: a
//! mistyped one does not compile.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClaimId {
    S1,
    S2,
    S3,
    S4,
    S5,
    T1,
    T2,
    T3,
    T4,
    T5,
    T6,
    T7,
    T8,
    T9,
    T10,
    J1,
    J2,
    J3,
}

impl ClaimId {
    /// In the study note's order.
    pub const ALL: [ClaimId; 18] = [
        ClaimId::S1,
        ClaimId::S2,
        ClaimId::S3,
        ClaimId::S4,
        ClaimId::S5,
        ClaimId::T1,
        ClaimId::T2,
        ClaimId::T3,
        ClaimId::T4,
        ClaimId::T5,
        ClaimId::T6,
        ClaimId::T7,
        ClaimId::T8,
        ClaimId::T9,
        ClaimId::T10,
        ClaimId::J1,
        ClaimId::J2,
        ClaimId::J3,
    ];

    pub fn code(self) -> &'static str {
        match self {
            ClaimId::S1 => "S1",
            ClaimId::S2 => "S2",
            ClaimId::S3 => "S3",
            ClaimId::S4 => "S4",
            ClaimId::S5 => "S5",
            ClaimId::T1 => "T1",
            ClaimId::T2 => "T2",
            ClaimId::T3 => "T3",
            ClaimId::T4 => "T4",
            ClaimId::T5 => "T5",
            ClaimId::T6 => "T6",
            ClaimId::T7 => "T7",
            ClaimId::T8 => "T8",
            ClaimId::T9 => "T9",
            ClaimId::T10 => "T10",
            ClaimId::J1 => "J1",
            ClaimId::J2 => "J2",
            ClaimId::J3 => "J3",
        }
    }

    /// What the note says, in plain words.
    pub fn says(self) -> &'static str {
        match self {
            ClaimId::S1 => "Sessions are stateful: the server remembers each user and uses that state on every request.",
            ClaimId::S2 => "With many users, sessions overload the server's RAM.",
            ClaimId::S3 => "Sessions overload the database.",
            ClaimId::S4 => "Sessions are hard to scale out: more servers need a system that distributes the sessions, or users must always return to the server they logged in on.",
            ClaimId::S5 => "Cookies work only on one domain and its subdomains, so using them across domains (CORS) is awkward.",
            ClaimId::T1 => "Tokens are stateless: after issuing one, the server keeps nothing and bears no load.",
            ClaimId::T2 => "Being stateless, tokens scale with no extra work: any server can serve any request.",
            ClaimId::T3 => "Tokens are signed, which proves the server issued them.",
            ClaimId::T4 => "No cookie is sent, so the vulnerabilities that come with cookies disappear.",
            ClaimId::T5 => "A stolen token is limited by giving it a short lifetime.",
            ClaimId::T6 => "Short access tokens make users log in often; the refresh token fixes that.",
            ClaimId::T7 => "A refresh token travels only when the access token has expired, so it is less exposed and safer.",
            ClaimId::T8 => "A refresh token carries nothing in its payload; the server checks it against the database.",
            ClaimId::T9 => "Tokens can be issued with limited privileges.",
            ClaimId::T10 => "Any device or domain can check a token, so assets can come from a CDN and servers handle only the API.",
            ClaimId::J1 => "A JWT's header holds the algorithm that \"encrypts\" the login information.",
            ClaimId::J2 => "A JWT's signature is the login information (ID + password).",
            ClaimId::J3 => "JWTs keep the system stateless and allow safe exchange of information.",
        }
    }

    /// The rule that gives this claim its label (applied in `verdicts.rs`; stated in the
    /// report's appendix).
    pub fn rule(self) -> &'static str {
        match self {
            ClaimId::S1 => "confirmed if a session read asks Redis at least once per request, refuted otherwise",
            ClaimId::S2 => "confirmed if a million users' state would not fit in this machine's memory, qualified if it grows per user but fits",
            ClaimId::S3 => "confirmed if one whole Redis core would be the limit at the sweep's rates, qualified if only a small Redis budget made it the limit, refuted if even that never did",
            ClaimId::S4 => "confirmed if sessions fail across replicas and a shared store did not make them scale, qualified if one shared store was enough, refuted if nothing failed without one",
            ClaimId::S5 => "refuted if the cookie worked from another site, confirmed if CORS (a refused preflight) stopped it, qualified if the browser's own cookie rules did",
            ClaimId::T1 => "refuted if a token read asks Redis, qualified if it does not but refreshes keep state in Redis, confirmed if nothing is kept",
            ClaimId::T2 => "qualified unless token reads grew at least 0.75x per replica added with every run bound by the replicas; then no difference if sessions with a shared store grew within the same spread of rounds, refuted if they grew more, confirmed otherwise",
            ClaimId::T3 => "confirmed if the token is accepted as issued and refused with a changed claim or a flipped signature bit, refuted otherwise",
            ClaimId::T4 => "refuted if a forged request got anything from the token, qualified if an injected script stole it, confirmed otherwise",
            ClaimId::T5 => "confirmed if the token stopped working at its lifetime, qualified if a leeway was added to it",
            ClaimId::T6 => "confirmed if no user was logged out at any lifetime tried, qualified otherwise",
            ClaimId::T7 => "partly measured: how often the refresh token travels is measured, whether that makes it safer is not",
            ClaimId::T8 => "confirmed if the payload is empty and checked against the store, qualified if it holds ids and times only, refuted if it holds user data or is not checked",
            ClaimId::T9 => "confirmed if only the token limits a credential's privileges, qualified if both models do, refuted if the token does not",
            ClaimId::T10 => "partly measured if the token was checked with the public key alone (a CDN is never measured), refuted if the check asked the store",
            ClaimId::J1 => "refuted if the header, decoded without a key, names the signing algorithm",
            ClaimId::J2 => "refuted if the password appears nowhere in the token, confirmed if it does",
            ClaimId::J3 => "qualified if a changed payload is refused (tamper-evident) while anyone can read it, refuted if it was accepted",
        }
    }
}

impl fmt::Display for ClaimId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for ClaimId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ClaimId::ALL
            .into_iter()
            .find(|c| c.code().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("no claim {s:?} in the study note (S1-S5, T1-T10, J1-J3)"))
    }
}

/// A verdict's label. Which one a claim gets is decided by its rule in `verdicts.rs`; what
/// each label means is stated in the report, from `rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Confirmed,
    Qualified,
    NoDifference,
    PartlyMeasured,
    Refuted,
    NotMeasurable,
}

impl Verdict {
    /// In the order the report lists them.
    pub const ALL: [Verdict; 6] = [
        Verdict::Confirmed,
        Verdict::Qualified,
        Verdict::NoDifference,
        Verdict::PartlyMeasured,
        Verdict::Refuted,
        Verdict::NotMeasurable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::Qualified => "qualified",
            Verdict::NoDifference => "no difference",
            Verdict::PartlyMeasured => "partly measured",
            Verdict::Refuted => "refuted",
            Verdict::NotMeasurable => "not measurable here",
        }
    }

    /// When a claim gets this label.
    pub fn rule(self) -> &'static str {
        match self {
            Verdict::Confirmed => {
                "the run measured what the claim says, for its reason"
            }
            Verdict::Qualified => {
                "it holds only under a condition the row names, for another reason, or for both models alike"
            }
            Verdict::NoDifference => {
                "one model is said to do better, but the two differed by less than the spread of rounds"
            }
            Verdict::PartlyMeasured => {
                "a part of the claim was not measured; the row gives the part that was"
            }
            Verdict::Refuted => "the run measured the opposite",
            Verdict::NotMeasurable => "no figure for it here; the row says why",
        }
    }

    /// The CSS class of its badge in the HTML report.
    pub fn class(self) -> &'static str {
        match self {
            Verdict::Confirmed => "v-confirmed",
            Verdict::Qualified => "v-qualified",
            Verdict::NoDifference => "v-same",
            Verdict::PartlyMeasured => "v-partly",
            Verdict::Refuted => "v-refuted",
            Verdict::NotMeasurable => "v-none",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Verdict::ALL.into_iter().find(|v| v.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_ids_round_trip_and_a_typo_is_an_error() {
        for c in ClaimId::ALL {
            assert_eq!(c.code().parse::<ClaimId>(), Ok(c));
        }
        assert_eq!("t10".parse::<ClaimId>(), Ok(ClaimId::T10));
        assert!("T11".parse::<ClaimId>().unwrap_err().contains("T11"));
        assert!("S 1".parse::<ClaimId>().is_err());
    }

    #[test]
    fn every_label_has_a_rule_and_a_distinct_name() {
        let names: std::collections::HashSet<&str> =
            Verdict::ALL.iter().map(|v| v.name()).collect();
        assert_eq!(names.len(), Verdict::ALL.len());
        for v in Verdict::ALL {
            assert!(!v.rule().is_empty());
            assert_eq!(Verdict::from_name(v.name()), Some(v));
        }
    }
}
