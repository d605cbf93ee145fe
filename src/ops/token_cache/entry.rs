//! One verified token as the cache keeps it, compactly: a full cache holds 100,000 of
//! them, and the decoded row (`token_store::Presented`: a dozen `String`s and `Vec`s,
//! each its own allocation) took about 790 bytes an entry. Here an entry is one
//! allocation of fixed-size fields (kind, roles, flags, scopes as bits, times), one for
//! all its strings end to end, one for what most tokens lack (services, service limits,
//! an allowlist, a sudo elevation: [`Rare`]) only when a token has any of it, its
//! account's id shared with the account's other tokens, and a last use whose address is
//! an `IpAddr` and whose user agent is shared with the other entries that saw the same
//! one ([`Agents`]). `benches/token_cache_memory.rs` measures it.
//!
//! What the caller needs is read from the entry directly (`id`, `expires_at`,
//! `allows_address`, …), and so is the token's JSON (`api::token_json`): a hit builds
//! no `Token`. [`Agents::used`] hands back the last use before the hit ([`LastUse`]),
//! which the answer shows; [`Cached::token`] builds a `Token` for the few that need one.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::lock;
use crate::db::token_store::{Presented, Token};
use crate::db::types::Flag;
use crate::domain::access::ServiceAccess;
use crate::domain::cidr::Allowlist;
use crate::domain::ids::{AccountId, ServiceId, TokenId, UserId};
use crate::domain::roles::{Role, ScopeSet, ServicePermission};
use crate::domain::secret::TokenKind;
use crate::ops::token_usage::clip_agent;
use crate::telemetry::text;

/// Distinct user agents shared at most; past it, sharing starts over.
const MAX_AGENTS: usize = 1_000;
/// Distinct account ids shared at most; past it, sharing starts over.
const MAX_ACCOUNTS: usize = 10_000;

/// The strings of an entry, in the order they are laid end to end. The last ends where
/// they all do, so its end is not kept.
#[derive(Debug, Clone, Copy)]
enum Text {
    Id,
    User,
    Name,
    Description,
    RolledFrom,
    ReplacedBy,
}

const TEXTS: usize = 6;

/// A time that may be absent, in 8 bytes rather than `Option<i64>`'s 16. Times are
/// seconds since 1970 and never `i64::MIN`, which stands for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MaybeTime(i64);

impl MaybeTime {
    const NONE: MaybeTime = MaybeTime(i64::MIN);

    fn new(at: Option<i64>) -> MaybeTime {
        at.map_or(MaybeTime::NONE, MaybeTime)
    }

    fn get(self) -> Option<i64> {
        (self != MaybeTime::NONE).then_some(self.0)
    }
}

/// The address of a last use: parsed when it is an address written the way `IpAddr`
/// prints it (as the client address always is), else its text (such as "unknown").
#[derive(Debug, Clone, PartialEq, Eq)]
enum LastIp {
    None,
    Addr(IpAddr),
    Text(Box<str>),
}

impl LastIp {
    fn new(text: Option<&str>) -> LastIp {
        let Some(text) = text else {
            return LastIp::None;
        };
        match text.parse::<IpAddr>() {
            Ok(addr) if prints_as(addr, text) => LastIp::Addr(addr),
            _ => LastIp::Text(text.into()),
        }
    }

    /// Whether this is `text`, compared without allocating (it runs on every hit).
    fn is(&self, text: &str) -> bool {
        match self {
            LastIp::None => false,
            LastIp::Addr(addr) => prints_as(*addr, text),
            LastIp::Text(known) => **known == *text,
        }
    }

    fn address(&self) -> Option<Address<'_>> {
        match self {
            LastIp::None => None,
            LastIp::Addr(addr) => Some(Address::Ip(*addr)),
            LastIp::Text(text) => Some(Address::Text(text)),
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            LastIp::None => None,
            LastIp::Addr(addr) => Some(text::address(*addr).as_str().to_owned()),
            LastIp::Text(text) => Some(text.to_string()),
        }
    }
}

/// The address of a last use, without making a `String` of it: the answer writes it
/// straight into its JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address<'a> {
    Ip(IpAddr),
    Text(&'a str),
}

impl fmt::Display for Address<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ip(addr) => addr.fmt(f),
            Address::Text(text) => f.write_str(text),
        }
    }
}

/// Whether `addr` prints as `written`, checked without allocating.
fn prints_as(addr: IpAddr, written: &str) -> bool {
    text::address(addr).as_str() == written
}

/// A string entries share, one copy for all, behind 8 bytes (an `Arc<str>` takes 16: its
/// length is in the pointer).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Shared(Arc<Box<str>>);

impl Shared {
    fn as_str(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Shared {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

/// Strings many entries have in common, one shared copy each. Bounded: past `max`
/// distinct strings it forgets the ones it shares and starts over (entries keep theirs).
#[derive(Debug)]
struct Interner {
    known: Mutex<HashSet<Shared>>,
    max: usize,
}

impl Interner {
    fn new(max: usize) -> Interner {
        Interner {
            known: Mutex::new(HashSet::new()),
            max,
        }
    }

    /// The shared copy of `text`.
    fn share(&self, text: &str) -> Shared {
        let mut known = lock(&self.known);
        if let Some(shared) = known.get(text) {
            return shared.clone();
        }
        if known.len() >= self.max {
            known.clear();
        }
        let shared = Shared(Arc::new(text.into()));
        known.insert(shared.clone());
        shared
    }
}

/// The last use of a token seen by this node, shown as the token's last use. A copy
/// costs no allocation unless the address is not one (such as "unknown").
#[derive(Debug, Clone)]
pub struct LastUse {
    at: MaybeTime,
    ip: LastIp,
    agent: Option<Shared>,
}

impl LastUse {
    pub fn at(&self) -> Option<i64> {
        self.at.get()
    }

    pub fn address(&self) -> Option<Address<'_>> {
        self.ip.address()
    }

    pub fn agent(&self) -> Option<&str> {
        self.agent.as_ref().map(Shared::as_str)
    }

    /// The address as the database keeps it.
    pub fn ip_text(&self) -> Option<String> {
        self.ip.text()
    }
}

/// User agents shared between entries, and account ids: the clients of an installation
/// are a handful and the tokens of an account have its id in common, so 100,000 entries
/// hold few of these strings between them (at most [`MAX_AGENTS`] agents and
/// [`MAX_ACCOUNTS`] ids shared at a time).
#[derive(Debug)]
pub struct Agents {
    agents: Interner,
    accounts: Interner,
}

impl Default for Agents {
    fn default() -> Agents {
        Agents {
            agents: Interner::new(MAX_AGENTS),
            accounts: Interner::new(MAX_ACCOUNTS),
        }
    }
}

impl Agents {
    /// The shared copy of `agent` (already clipped to the length kept).
    fn share(&self, agent: &str) -> Shared {
        self.agents.share(agent)
    }

    /// The entry for what `token_store::authenticate` read, and the owner's service
    /// access.
    pub fn entry(&self, presented: Presented, access: ServiceAccess, loaded_at: i64) -> Cached {
        let Presented {
            token,
            sudo_until,
            member_role,
            owner_locked,
            services,
        } = presented;
        let texts: [Option<&str>; TEXTS] = [
            Some(token.id.as_str()),
            token.user_id.as_ref().map(UserId::as_str),
            Some(&token.name),
            token.description.as_deref(),
            token.rolled_from.as_ref().map(TokenId::as_str),
            token.replaced_by.as_ref().map(TokenId::as_str),
        ];
        let mut all = String::with_capacity(texts.iter().flatten().map(|t| t.len()).sum());
        let mut ends = [0u32; TEXTS - 1];
        let mut present = 0u8;
        for (i, text) in texts.iter().enumerate() {
            if let Some(text) = text {
                all.push_str(text);
                present |= 1 << i;
            }
            if let Some(end) = ends.get_mut(i) {
                // A row's strings are far below 4 GiB; were they not, `text` reads "".
                *end = u32::try_from(all.len()).unwrap_or(u32::MAX);
            }
        }
        let last_use = LastUse {
            at: MaybeTime::new(token.last_used_at),
            ip: LastIp::new(token.last_used_ip.as_deref()),
            agent: token
                .last_used_agent
                .as_deref()
                .map(|agent| self.share(clip_agent(agent))),
        };
        Cached {
            texts: all.into_boxed_str(),
            account: self.accounts.share(token.account_id.as_str()),
            ends,
            present,
            kind: token.kind,
            role: token.role,
            member_role,
            owner_locked,
            tls_access: token.tls_access.get(),
            scope: token.scope,
            created_at: token.created_at,
            expires_at: MaybeTime::new(token.expires_at),
            loaded_at,
            rare: Rare {
                services: services.into_boxed_slice(),
                allowlist: token.allowed_cidrs,
                limits: match access {
                    ServiceAccess::All => None,
                    ServiceAccess::Limited(list) => Some(list.into_boxed_slice()),
                },
                sudo_until,
            }
            .boxed(),
            last_use: Mutex::new(last_use),
            unwritten: AtomicBool::new(false),
        }
    }

    /// Notes a use by this node and returns the last use before it: the latest this
    /// node saw (or the database had when the entry was loaded).
    pub fn used(&self, entry: &Cached, at: i64, ip: &str, agent: Option<&str>) -> LastUse {
        let agent = agent.map(clip_agent);
        let before = {
            let mut last = lock(&entry.last_use);
            let before = last.clone();
            if last.at.get().is_none_or(|previous| previous <= at) {
                last.at = MaybeTime(at);
                if !last.ip.is(ip) {
                    last.ip = LastIp::new(Some(ip));
                }
                if last.agent.as_ref().map(Shared::as_str) != agent {
                    last.agent = agent.map(|agent| self.share(agent));
                }
            }
            before
        };
        before
    }
}

/// What most tokens lack, kept apart: every entry spends 8 bytes on all four (fields of
/// their own took 48), and only a token with any of them an allocation.
#[derive(Debug)]
struct Rare {
    /// The token's services; empty: all of them.
    services: Box<[ServiceId]>,
    allowlist: Option<Allowlist>,
    /// The owner's service limits; None: every service.
    limits: Option<Box<[(ServiceId, ServicePermission)]>>,
    sudo_until: Option<i64>,
}

impl Rare {
    /// None when there is nothing to keep.
    fn boxed(self) -> Option<Box<Rare>> {
        let none = self.services.is_empty()
            && self.allowlist.is_none()
            && self.limits.is_none()
            && self.sudo_until.is_none();
        (!none).then(|| Box::new(self))
    }
}

/// One verified token: the row `token_store::authenticate` returned (less its secret's
/// digest, which is the key), and the owner's service access when the owner is a member.
#[derive(Debug)]
pub struct Cached {
    /// The strings of [`Text`], end to end; `ends[i]` is where the `i`th ends (the last
    /// ends with `texts`), and bit `i` of `present` says whether an optional one is there
    /// at all.
    texts: Box<str>,
    /// The account's id, shared with its other tokens.
    account: Shared,
    ends: [u32; TEXTS - 1],
    present: u8,
    kind: TokenKind,
    role: Option<Role>,
    member_role: Option<Role>,
    owner_locked: bool,
    tls_access: bool,
    scope: ScopeSet,
    created_at: i64,
    expires_at: MaybeTime,
    pub(super) loaded_at: i64,
    rare: Option<Box<Rare>>,
    last_use: Mutex<LastUse>,
    /// Whether `last_use` holds a use by this node not yet written to the database.
    unwritten: AtomicBool,
}

impl Cached {
    fn text(&self, which: Text) -> &str {
        let i = which as usize;
        let start = match i {
            0 => 0,
            _ => self.ends[i - 1] as usize,
        };
        let end = self
            .ends
            .get(i)
            .map_or(self.texts.len(), |&end| end as usize);
        self.texts.get(start..end).unwrap_or("")
    }

    fn optional(&self, which: Text) -> Option<&str> {
        (self.present & (1 << which as usize) != 0).then(|| self.text(which))
    }

    pub fn id(&self) -> &str {
        self.text(Text::Id)
    }

    pub fn account_id(&self) -> &str {
        self.account.as_str()
    }

    /// The owner of a user token.
    pub fn user_id(&self) -> Option<&str> {
        self.optional(Text::User)
    }

    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    pub fn name(&self) -> &str {
        self.text(Text::Name)
    }

    pub fn description(&self) -> Option<&str> {
        self.optional(Text::Description)
    }

    /// The token this one was rolled from.
    pub fn rolled_from(&self) -> Option<&str> {
        self.optional(Text::RolledFrom)
    }

    /// The token that replaced this one by a roll.
    pub fn replaced_by(&self) -> Option<&str> {
        self.optional(Text::ReplacedBy)
    }

    pub fn scope(&self) -> ScopeSet {
        self.scope
    }

    pub fn created_at(&self) -> i64 {
        self.created_at
    }

    pub fn tls_access(&self) -> bool {
        self.tls_access
    }

    /// The addresses the token may be used from; None: any.
    pub fn allowlist(&self) -> Option<&Allowlist> {
        self.rare.as_ref()?.allowlist.as_ref()
    }

    /// An automation token's role.
    pub fn role(&self) -> Option<Role> {
        self.role
    }

    /// The owner's role in the account; None when the owner is no longer a member.
    pub fn member_role(&self) -> Option<Role> {
        self.member_role
    }

    pub fn owner_locked(&self) -> bool {
        self.owner_locked
    }

    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at.get()
    }

    pub fn sudo_until(&self) -> Option<i64> {
        self.rare.as_ref()?.sudo_until
    }

    /// Whether a roll replaced the token (it then expires when the overlap ends).
    pub fn is_replaced(&self) -> bool {
        self.optional(Text::ReplacedBy).is_some()
    }

    /// Whether a call from `ip` may use the token.
    pub fn allows_address(&self, ip: Option<IpAddr>) -> bool {
        match (self.allowlist(), ip) {
            (None, _) => true,
            (Some(list), Some(ip)) => list.allows(ip),
            (Some(_), None) => false,
        }
    }

    /// The token's services; empty: every service of the account.
    pub fn services(&self) -> &[ServiceId] {
        self.rare.as_ref().map_or(&[], |rare| &rare.services)
    }

    /// The owner's service access.
    pub fn access(&self) -> ServiceAccess {
        match self.rare.as_ref().and_then(|rare| rare.limits.as_ref()) {
            None => ServiceAccess::All,
            Some(list) => ServiceAccess::Limited(list.to_vec()),
        }
    }

    /// Marks the last use as not yet written; true when it was written until now, so
    /// the caller queues the entry for the next write (once, however many uses follow).
    pub fn mark_unwritten(&self) -> bool {
        !self.unwritten.swap(true, Ordering::AcqRel)
    }

    /// The last use, to be written now. The mark is cleared before the use is read, so
    /// a use that comes after the read marks the entry again and is written next time.
    pub fn use_to_write(&self) -> LastUse {
        self.unwritten.store(false, Ordering::Release);
        lock(&self.last_use).clone()
    }

    /// The token with its last use as this node last saw it.
    pub fn token(&self) -> Token {
        let last = lock(&self.last_use).clone();
        self.token_as_of(&last)
    }

    /// The token with `last` as its last use.
    pub fn token_as_of(&self, last: &LastUse) -> Token {
        Token {
            id: TokenId::from_raw(self.id()),
            account_id: AccountId::from_raw(self.account_id()),
            kind: self.kind,
            user_id: self.user_id().map(UserId::from_raw),
            name: self.name().to_owned(),
            scope: self.scope,
            role: self.role,
            tls_access: Flag(self.tls_access),
            created_at: self.created_at,
            expires_at: self.expires_at.get(),
            last_used_at: last.at.get(),
            last_used_ip: last.ip.text(),
            last_used_agent: last.agent().map(str::to_owned),
            description: self.description().map(str::to_owned),
            allowed_cidrs: self.allowlist().cloned(),
            rolled_from: self.rolled_from().map(TokenId::from_raw),
            replaced_by: self.replaced_by().map(TokenId::from_raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token with every field set, in strings of one to four bytes a character.
    fn full() -> Presented {
        Presented {
            token: Token {
                id: TokenId::from_raw("tök-1"),
                account_id: AccountId::from_raw("äccount-𝔸"),
                kind: TokenKind::User,
                user_id: Some(UserId::from_raw("üser-2")),
                name: "Déploiement — production 🚀".to_owned(),
                scope: ScopeSet::parse("global purge_select").expect("scopes"),
                role: None,
                tls_access: Flag(true),
                created_at: 1_700_000_000,
                expires_at: Some(1_800_000_000),
                last_used_at: Some(1_750_000_000),
                last_used_ip: Some("2001:db8::7".to_owned()),
                last_used_agent: Some("curl/8.5.0 (ü)".to_owned()),
                description: Some("Für die CI — 東京".to_owned()),
                allowed_cidrs: Allowlist::parse_input(["10.0.0.0/8", "2001:db8::/32"])
                    .expect("an allowlist"),
                rolled_from: Some(TokenId::from_raw("ancêtre")),
                replaced_by: Some(TokenId::from_raw("successeur")),
            },
            sudo_until: Some(1_760_000_000),
            member_role: Some(Role::Engineer),
            owner_locked: true,
            services: vec![ServiceId::from_raw("svc-a"), ServiceId::from_raw("svc-ß")],
        }
    }

    /// An automation token with every optional field absent.
    fn bare() -> Presented {
        Presented {
            token: Token {
                name: String::new(),
                role: Some(Role::Billing),
                ..Token::fixture("t", "a", None)
            },
            sudo_until: None,
            member_role: None,
            owner_locked: false,
            services: Vec::new(),
        }
    }

    fn limited() -> ServiceAccess {
        ServiceAccess::Limited(vec![
            (ServiceId::from_raw("svc-a"), ServicePermission::ReadOnly),
            (ServiceId::from_raw("svc-b"), ServicePermission::PurgeSelect),
        ])
    }

    #[test]
    fn every_field_survives_the_entry() {
        let agents = Agents::default();
        for (presented, access) in [(full(), limited()), (bare(), ServiceAccess::All)] {
            let expected = format!("{:?}", presented.token);
            let (sudo, role, locked, services) = (
                presented.sudo_until,
                presented.member_role,
                presented.owner_locked,
                presented.services.clone(),
            );
            let entry = agents.entry(presented, access.clone(), 42);
            assert_eq!(format!("{:?}", entry.token()), expected);
            assert_eq!(entry.sudo_until(), sudo);
            assert_eq!(entry.member_role(), role);
            assert_eq!(entry.owner_locked(), locked);
            assert_eq!(entry.services(), services.as_slice());
            assert_eq!(entry.access(), access);
            assert_eq!(entry.loaded_at, 42);
        }
        let entry = agents.entry(full(), ServiceAccess::All, 0);
        assert_eq!(entry.id(), "tök-1");
        assert_eq!(entry.account_id(), "äccount-𝔸");
        assert_eq!(entry.user_id(), Some("üser-2"));
        assert_eq!(entry.kind(), TokenKind::User);
        assert_eq!(entry.expires_at(), Some(1_800_000_000));
        assert!(entry.is_replaced());
        let entry = agents.entry(bare(), ServiceAccess::All, 0);
        assert_eq!((entry.user_id(), entry.role()), (None, Some(Role::Billing)));
        assert_eq!((entry.expires_at(), entry.is_replaced()), (None, false));
    }

    #[test]
    fn empty_optional_strings_stay_present() {
        let mut presented = bare();
        presented.token.description = Some(String::new());
        presented.token.user_id = Some(UserId::from_raw(""));
        let entry = Agents::default().entry(presented, ServiceAccess::All, 0);
        let token = entry.token();
        assert_eq!(token.description.as_deref(), Some(""));
        assert_eq!(token.user_id, Some(UserId::from_raw("")));
        assert_eq!(token.rolled_from, None);
    }

    #[test]
    fn what_is_rare_is_kept_apart_and_only_when_there() {
        let agents = Agents::default();
        let bare_entry = agents.entry(bare(), ServiceAccess::All, 0);
        assert!(
            bare_entry.rare.is_none(),
            "a token with none of it allocates nothing"
        );
        assert_eq!(bare_entry.services(), &[] as &[ServiceId]);
        assert_eq!(
            (bare_entry.allowlist(), bare_entry.sudo_until()),
            (None, None)
        );
        assert_eq!(bare_entry.access(), ServiceAccess::All);
        // Each part alone: kept, and the others still read as absent.
        let mut sudo = bare();
        sudo.sudo_until = Some(1_760_000_000);
        let entry = agents.entry(sudo, ServiceAccess::All, 0);
        assert_eq!(entry.sudo_until(), Some(1_760_000_000));
        assert_eq!((entry.allowlist(), entry.services().len()), (None, 0));
        assert_eq!(entry.access(), ServiceAccess::All);
        let mut services = bare();
        services.services = vec![ServiceId::from_raw("svc-a")];
        let entry = agents.entry(services, ServiceAccess::All, 0);
        assert_eq!(entry.services(), &[ServiceId::from_raw("svc-a")]);
        assert_eq!((entry.allowlist(), entry.sudo_until()), (None, None));
        let mut allowlist = bare();
        allowlist.token.allowed_cidrs = full().token.allowed_cidrs;
        let entry = agents.entry(allowlist, ServiceAccess::All, 0);
        assert_eq!(entry.allowlist(), full().token.allowed_cidrs.as_ref());
        assert!(!entry.allows_address(None));
        assert_eq!((entry.services().len(), entry.sudo_until()), (0, None));
        // Limits with no service at all are limits still, not every service.
        for access in [limited(), ServiceAccess::Limited(Vec::new())] {
            let entry = agents.entry(bare(), access.clone(), 0);
            assert_eq!(entry.access(), access);
            assert_eq!((entry.allowlist(), entry.sudo_until()), (None, None));
        }
    }

    #[test]
    fn the_allowlist_is_checked_from_the_entry() {
        let agents = Agents::default();
        let limited = agents.entry(full(), ServiceAccess::All, 0);
        assert!(limited.allows_address("10.1.2.3".parse().ok()));
        assert!(limited.allows_address("2001:db8::1".parse().ok()));
        assert!(!limited.allows_address("192.0.2.1".parse().ok()));
        assert!(!limited.allows_address(None));
        let open = agents.entry(bare(), ServiceAccess::All, 0);
        assert!(open.allows_address(None));
        assert!(open.allows_address("192.0.2.1".parse().ok()));
    }

    #[test]
    fn a_use_shows_on_the_next_one() {
        let agents = Agents::default();
        let entry = agents.entry(full(), ServiceAccess::All, 0);
        let first =
            entry.token_as_of(&agents.used(&entry, 1_750_000_100, "192.0.2.9", Some("wrk")));
        // The token as it stood before this use: what the database had.
        assert_eq!(first.last_used_at, Some(1_750_000_000));
        assert_eq!(first.last_used_ip.as_deref(), Some("2001:db8::7"));
        assert_eq!(first.last_used_agent.as_deref(), Some("curl/8.5.0 (ü)"));
        let second = agents.used(&entry, 1_750_000_200, "unknown", None);
        assert_eq!(second.at(), Some(1_750_000_100));
        assert_eq!(
            second.address(),
            Some(Address::Ip("192.0.2.9".parse().unwrap()))
        );
        assert_eq!(second.agent(), Some("wrk"));
        let third = agents.used(&entry, 1_750_000_300, "10.0.0.1", None);
        assert_eq!(third.address(), Some(Address::Text("unknown")));
        assert_eq!(third.agent(), None);
        // An older use (a request that waited) does not replace a newer one.
        agents.used(&entry, 1_750_000_150, "198.51.100.1", Some("old"));
        let now = entry.token();
        assert_eq!(now.last_used_at, Some(1_750_000_300));
        assert_eq!(now.last_used_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(now.last_used_agent, None);
    }

    #[test]
    fn addresses_keep_their_text() {
        for text in [
            "192.0.2.1",
            "2001:db8::1",
            "::ffff:192.0.2.1",
            "unknown",
            "",
        ] {
            let ip = LastIp::new(Some(text));
            assert_eq!(ip.text().as_deref(), Some(text));
            assert_eq!(ip.address().map(|a| a.to_string()).as_deref(), Some(text));
            assert!(ip.is(text), "{text}");
        }
        // Written another way than `IpAddr` prints it: kept as written, and not the
        // address as printed.
        for text in ["2001:DB8::1", "2001:0db8::1"] {
            let ip = LastIp::new(Some(text));
            assert_eq!(ip.text().as_deref(), Some(text));
            assert!(!ip.is("2001:db8::1"));
            assert!(!LastIp::new(Some("2001:db8::1")).is(text));
        }
        assert!(!LastIp::new(Some("10.0.0.1")).is("10.0.0.10"));
        assert!(!LastIp::new(Some("10.0.0.10")).is("10.0.0.1"));
        let longest = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        assert_eq!(LastIp::new(Some(longest)).text().as_deref(), Some(longest));
        assert!(matches!(LastIp::new(Some("10.0.0.1")), LastIp::Addr(_)));
        assert!(!LastIp::new(Some("10.0.0.1")).is("10.0.0.2"));
        assert!(!LastIp::new(Some("unknown")).is("10.0.0.2"));
        assert!(!LastIp::None.is("10.0.0.2"));
        assert_eq!(LastIp::new(None).text(), None);
    }

    #[test]
    fn agents_are_shared_clipped_and_bounded() {
        let agents = Agents::default();
        let one = agents.entry(full(), ServiceAccess::All, 0);
        let two = agents.entry(full(), ServiceAccess::All, 0);
        let agent = |entry: &Cached| lock(&entry.last_use).agent.clone().expect("an agent");
        assert!(Arc::ptr_eq(&agent(&one).0, &agent(&two).0));
        agents.used(&one, 1_750_000_100, "10.0.0.1", Some("wrk"));
        agents.used(&two, 1_750_000_100, "10.0.0.1", Some("wrk"));
        assert!(Arc::ptr_eq(&agent(&one).0, &agent(&two).0));
        // Kept to the length the usage writer keeps, on a character boundary.
        let long = "é".repeat(300);
        agents.used(&one, 1_750_000_200, "10.0.0.1", Some(&long));
        assert_eq!(agent(&one).as_str().chars().count(), 256);
        for i in 0..MAX_AGENTS * 2 {
            agents.share(&format!("agent {i}"));
            assert!(lock(&agents.agents.known).len() <= MAX_AGENTS);
        }
    }

    #[test]
    fn account_ids_are_shared_and_bounded() {
        let agents = Agents::default();
        let one = agents.entry(full(), ServiceAccess::All, 0);
        let two = agents.entry(full(), limited(), 0);
        assert!(Arc::ptr_eq(&one.account.0, &two.account.0));
        let other = agents.entry(bare(), ServiceAccess::All, 0);
        assert_eq!((one.account_id(), other.account_id()), ("äccount-𝔸", "a"));
        for i in 0..MAX_ACCOUNTS * 2 {
            agents.accounts.share(&format!("account {i}"));
            assert!(lock(&agents.accounts.known).len() <= MAX_ACCOUNTS);
        }
        // Entries keep theirs when sharing starts over.
        assert_eq!(one.account_id(), "äccount-𝔸");
    }

    #[test]
    fn times_keep_none_apart() {
        for at in [None, Some(0), Some(-1), Some(i64::MAX), Some(1_800_000_000)] {
            assert_eq!(MaybeTime::new(at).get(), at);
        }
    }

    #[test]
    fn an_entry_stays_small() {
        // In its `Arc` (16 bytes of counts) with malloc's 8-byte header, an entry of at
        // most 136 bytes takes one of glibc's 160-byte chunks; 8 bytes more would take a
        // 176-byte one. The bench measures it all, strings and map slot included.
        assert!(std::mem::size_of::<Cached>() <= 136);
    }
}
