//! The devnet's implementation of Malachite's `Context` trait.
//!
//! `malachitebft-core-types` only defines traits; a host must supply every concrete
//! type: height, address, value (the block) and its id, proposal, vote, validator,
//! validator set, a (unused) proposal-part type, the vote-extension type, the
//! signing scheme, and the proposer-selection rule. There is no ready-made context
//! on crates.io (the `malachitebft-test` crate with `TestContext` is not published),
//! so this file is the minimal one. The consensus value is a chain block
//! ([`crate::chain::Block`]) and its id the block hash.
//!
//! Signing: the `Ed25519` scheme comes ready from `malachitebft-signing-ed25519`;
//! what is ours is the canonical byte encoding that gets signed (`sign_bytes`) and a
//! `SigningProvider` impl, which in turn gives us commit/polka/round certificate
//! verification for free through the blanket `SigningProviderExt`.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use crate::lock::Lock;

use malachitebft_core_types::{
    self as mct, Context, NilOrVal, Round, SignedExtension, SignedMessage, SigningProvider,
    VoteType, VotingPower,
};
use malachitebft_signing_ed25519::{Ed25519, PrivateKey, PublicKey, Signature};

use crate::crypto::hex;

// ---------------------------------------------------------------------------
// Height
// ---------------------------------------------------------------------------

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl mct::Height for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = Height(1);

    fn increment_by(&self, n: u64) -> Self {
        Height(self.0 + n)
    }
    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }
    fn as_u64(&self) -> u64 {
        self.0
    }
}

// ---------------------------------------------------------------------------
// Address: the chain's (first 20 bytes of blake3(public key))
// ---------------------------------------------------------------------------

pub use crate::chain::Address;

impl mct::Address for Address {}

// ---------------------------------------------------------------------------
// Value = Block (a list of opaque transactions); ValueId = BlockHash
// ---------------------------------------------------------------------------

#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockHash(pub [u8; 32]);

impl fmt::Display for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &hex(&self.0)[..12])
    }
}
impl fmt::Debug for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The consensus value: a chain block behind an `Arc` (the core clones values often), with
/// its hash computed once.
#[derive(Clone)]
pub struct Value {
    pub block: Arc<crate::chain::Block>,
    hash: BlockHash,
}

impl Value {
    pub fn new(block: crate::chain::Block) -> Self {
        let hash = BlockHash(block.hash());
        Value {
            block: Arc::new(block),
            hash,
        }
    }

    pub fn hash(&self) -> BlockHash {
        self.hash
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
    }
}
impl Eq for Value {}
impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Value {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.hash.cmp(&other.hash)
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Block(h={}, {})", self.block.height, self.hash)
    }
}

impl mct::Value for Value {
    type Id = BlockHash;
    fn id(&self) -> BlockHash {
        self.hash
    }
}

// ---------------------------------------------------------------------------
// Proposal (carries the full block; see node.rs for why)
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub height: Height,
    pub round: Round,
    pub value: Value,
    pub pol_round: Round,
    pub proposer: Address,
}

impl Proposal {
    /// Canonical bytes that are signed: the value enters through its id only.
    pub fn sign_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(96);
        b.extend_from_slice(b"proposal");
        b.extend_from_slice(&self.height.0.to_be_bytes());
        b.extend_from_slice(&self.round.as_i64().to_be_bytes());
        b.extend_from_slice(&self.value.hash().0);
        b.extend_from_slice(&self.pol_round.as_i64().to_be_bytes());
        b.extend_from_slice(&self.proposer.0);
        b
    }
}

impl mct::Proposal<DevnetContext> for Proposal {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &Value {
        &self.value
    }
    fn take_value(self) -> Value {
        self.value
    }
    fn pol_round(&self) -> Round {
        self.pol_round
    }
    fn validator_address(&self) -> &Address {
        &self.proposer
    }
}

/// Required by the trait even though we never stream proposal parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoParts;

impl mct::ProposalPart<DevnetContext> for NoParts {
    fn is_first(&self) -> bool {
        true
    }
    fn is_last(&self) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------
// Vote
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vote {
    pub vote_type: VoteType,
    pub height: Height,
    pub round: Round,
    pub value: NilOrVal<BlockHash>,
    pub validator: Address,
    /// Vote extensions are disabled in this devnet (we resume `ExtendVote` with `None`).
    pub extension: Option<SignedExtension<DevnetContext>>,
}

impl Vote {
    /// Canonical bytes that are signed. The extension is NOT included: certificate
    /// verification rebuilds the vote with `Context::new_precommit` (no extension)
    /// and checks the signature against these bytes.
    pub fn sign_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(80);
        b.extend_from_slice(match self.vote_type {
            VoteType::Prevote => b"prevote__",
            VoteType::Precommit => b"precommit",
        });
        b.extend_from_slice(&self.height.0.to_be_bytes());
        b.extend_from_slice(&self.round.as_i64().to_be_bytes());
        match &self.value {
            NilOrVal::Nil => b.push(0),
            NilOrVal::Val(id) => {
                b.push(1);
                b.extend_from_slice(&id.0);
            }
        }
        b.extend_from_slice(&self.validator.0);
        b
    }
}

impl mct::Vote<DevnetContext> for Vote {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &NilOrVal<BlockHash> {
        &self.value
    }
    fn take_value(self) -> NilOrVal<BlockHash> {
        self.value
    }
    fn vote_type(&self) -> VoteType {
        self.vote_type
    }
    fn validator_address(&self) -> &Address {
        &self.validator
    }
    fn extension(&self) -> Option<&SignedExtension<DevnetContext>> {
        self.extension.as_ref()
    }
    fn take_extension(&mut self) -> Option<SignedExtension<DevnetContext>> {
        self.extension.take()
    }
    fn extend(self, extension: SignedExtension<DevnetContext>) -> Self {
        Vote {
            extension: Some(extension),
            ..self
        }
    }
}

// ---------------------------------------------------------------------------
// Validators
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    pub address: Address,
    pub public_key: PublicKey,
    pub voting_power: VotingPower,
}

impl Validator {
    pub fn new(public_key: PublicKey, voting_power: VotingPower) -> Self {
        Validator {
            address: Address::of(public_key.as_bytes()),
            public_key,
            voting_power,
        }
    }
}

impl mct::Validator<DevnetContext> for Validator {
    fn address(&self) -> &Address {
        &self.address
    }
    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
    fn voting_power(&self) -> VotingPower {
        self.voting_power
    }
}

/// The trait requires a deterministic order: power descending, then address ascending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    pub validators: Arc<Vec<Validator>>,
}

impl ValidatorSet {
    pub fn new(mut validators: Vec<Validator>) -> Self {
        validators.sort_by(|a, b| {
            b.voting_power
                .cmp(&a.voting_power)
                .then(a.address.cmp(&b.address))
        });
        ValidatorSet {
            validators: Arc::new(validators),
        }
    }
}

impl mct::ValidatorSet<DevnetContext> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }
    fn total_voting_power(&self) -> VotingPower {
        self.validators.iter().map(|v| v.voting_power).sum()
    }
    fn get_by_address(&self, address: &Address) -> Option<&Validator> {
        self.validators.iter().find(|v| &v.address == address)
    }
    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

// ---------------------------------------------------------------------------
// The Context
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, Default)]
pub struct DevnetContext;

impl DevnetContext {
    /// Round-robin proposer index: (height - 1 + round) mod n.
    pub fn proposer_index(n: usize, height: Height, round: Round) -> usize {
        let r = round.as_u32().unwrap_or(0) as u64;
        ((height.0.saturating_sub(1) + r) % n as u64) as usize
    }
}

impl Context for DevnetContext {
    type Address = Address;
    type Height = Height;
    type ProposalPart = NoParts;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Value = Value;
    type Vote = Vote;
    type Extension = ();
    type SigningScheme = Ed25519;

    fn select_proposer<'a>(
        &self,
        validator_set: &'a ValidatorSet,
        height: Height,
        round: Round,
    ) -> &'a Validator {
        let i = Self::proposer_index(validator_set.validators.len(), height, round);
        &validator_set.validators[i]
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: Value,
        pol_round: Round,
        address: Address,
    ) -> Proposal {
        Proposal {
            height,
            round,
            value,
            pol_round,
            proposer: address,
        }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockHash>,
        address: Address,
    ) -> Vote {
        Vote {
            vote_type: VoteType::Prevote,
            height,
            round,
            value: value_id,
            validator: address,
            extension: None,
        }
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockHash>,
        address: Address,
    ) -> Vote {
        Vote {
            vote_type: VoteType::Precommit,
            height,
            round,
            value: value_id,
            validator: address,
            extension: None,
        }
    }
}

// ---------------------------------------------------------------------------
// Signing provider (answers the Sign*/Verify* effects)
// ---------------------------------------------------------------------------

/// (public key, signed bytes, signature).
type VerifiedKey = ([u8; 32], Vec<u8>, [u8; 64]);

pub struct Ed25519Signer {
    key: PrivateKey,
    /// (public key, signed bytes, signature) triples already known to be valid.
    /// The core asks to verify the same signature several times: our own votes
    /// (it feeds them back to itself), proposals (we pre-check them before running
    /// the validity closure), and every precommit again inside the commit certificate
    /// at `Decide`. Caching these halves the ed25519 work per height.
    verified: Lock<HashSet<VerifiedKey>>,
}

impl Ed25519Signer {
    pub fn new(key: PrivateKey) -> Self {
        Ed25519Signer {
            key,
            verified: Lock::new(HashSet::new()),
        }
    }

    /// Call after each committed height to bound the cache.
    pub fn clear_cache(&self) {
        self.verified.lock().clear();
    }

    fn sign(&self, bytes: Vec<u8>) -> Signature {
        let sig = self.key.sign(&bytes);
        let pk = *self.key.public_key().as_bytes();
        self.verified.lock().insert((pk, bytes, sig.to_bytes()));
        sig
    }

    fn verify(&self, bytes: Vec<u8>, sig: &Signature, pk: &PublicKey) -> bool {
        let key = (*pk.as_bytes(), bytes, sig.to_bytes());
        if self.verified.lock().contains(&key) {
            return true;
        }
        let ok = pk.verify(&key.1, sig).is_ok();
        if ok {
            self.verified.lock().insert(key);
        }
        ok
    }
}

type Ctx = DevnetContext;

impl SigningProvider<Ctx> for Ed25519Signer {
    fn sign_vote(&self, vote: Vote) -> SignedMessage<Ctx, Vote> {
        let sig = self.sign(vote.sign_bytes());
        SignedMessage::new(vote, sig)
    }

    fn verify_signed_vote(&self, vote: &Vote, signature: &Signature, pk: &PublicKey) -> bool {
        self.verify(vote.sign_bytes(), signature, pk)
    }

    fn sign_proposal(&self, proposal: Proposal) -> SignedMessage<Ctx, Proposal> {
        let sig = self.sign(proposal.sign_bytes());
        SignedMessage::new(proposal, sig)
    }

    fn verify_signed_proposal(&self, p: &Proposal, signature: &Signature, pk: &PublicKey) -> bool {
        self.verify(p.sign_bytes(), signature, pk)
    }

    // Proposal parts and vote extensions are not used by this devnet; they are
    // still part of the trait, so give them a domain-separated signature.
    fn sign_proposal_part(&self, part: NoParts) -> SignedMessage<Ctx, NoParts> {
        SignedMessage::new(part, self.key.sign(b"part"))
    }

    fn verify_signed_proposal_part(&self, _: &NoParts, sig: &Signature, pk: &PublicKey) -> bool {
        pk.verify(b"part", sig).is_ok()
    }

    fn sign_vote_extension(&self, ext: ()) -> SignedMessage<Ctx, ()> {
        SignedMessage::new(ext, self.key.sign(b"ext"))
    }

    fn verify_signed_vote_extension(&self, _: &(), sig: &Signature, pk: &PublicKey) -> bool {
        pk.verify(b"ext", sig).is_ok()
    }
}
