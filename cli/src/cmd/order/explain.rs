//! Every broken rule as one sentence naming it, whether found before sending (the pre-checks below mirror
//! the contract's checks and produce the very error the contract would revert with) or decoded from a
//! revert (simulation or receipt). Both paths go through [`explain`], so the messages are the same.

use std::fmt;

use alloy::{
    primitives::{Address, B256, U256},
    sol,
    sol_types::{SolInterface, decode_revert_reason},
};
use holdfast_primitives::bindings::IHoldfastEscrow::{self, IHoldfastEscrowErrors, Status};

use super::{amount::Units, order_id::utc};

/// Seconds a frozen order waits for its arbiter (the contract's `FREEZE_TIMEOUT`).
pub(crate) const FREEZE_TIMEOUT: u64 = 30 * 86_400;

sol! {
    #[sol(all_derives)]
    /// Token-side errors worth explaining: OpenZeppelin ERC-20 / EIP-2612 / SafeERC20, and the EIP-3009
    /// and blacklist errors of USDC-like tokens (as in the devnet's MockUSDC).
    interface ITokenErrors {
        error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed);
        error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
        error ERC20InvalidSender(address sender);
        error ERC20InvalidReceiver(address receiver);
        error ERC20InvalidApprover(address approver);
        error ERC20InvalidSpender(address spender);
        error ERC2612ExpiredSignature(uint256 deadline);
        error ERC2612InvalidSigner(address signer, address owner);
        error SafeERC20FailedOperation(address token);
        error ECDSAInvalidSignature();
        error ECDSAInvalidSignatureLength(uint256 length);
        error ECDSAInvalidSignatureS(bytes32 s);
        error AccountBlacklisted(address account);
        error AuthorizationNotYetValid(uint256 validAfter);
        error AuthorizationExpired(uint256 validBefore);
        error AuthorizationUsedOrCanceled(address authorizer, bytes32 nonce);
        error InvalidSignature();
        error CallerMustBePayee(address caller, address payee);
        error ReentrancyGuardReentrantCall();
    }
}

pub(crate) use ITokenErrors::ITokenErrorsErrors as TokenErrors;

/// The token, as the amounts are shown.
#[derive(Debug, Clone)]
pub(crate) struct TokenMeta {
    pub(crate) address: Address,
    pub(crate) symbol: String,
    pub(crate) decimals: u8,
}

impl TokenMeta {
    pub(crate) fn units(&self, base: U256) -> Units<'_> {
        Units { base, decimals: self.decimals, symbol: &self.symbol }
    }
}

/// An order as `getOrder` returns it.
#[derive(Debug, Clone)]
pub(crate) struct OnChain {
    pub(crate) order: IHoldfastEscrow::Order,
    pub(crate) arbiter: Address,
}

impl OnChain {
    pub(crate) fn status(&self) -> Status {
        self.order.status
    }
    pub(crate) fn remaining(&self) -> U256 {
        U256::from(self.order.remaining)
    }
    pub(crate) fn deadline(&self) -> u64 {
        self.order.deadline.to::<u64>()
    }
}

/// What the caller tried to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Lock,
    Deliver,
    Release,
    Refund,
    Freeze,
    Resolve,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Self::Lock => "lock",
            Self::Deliver => "mark it delivered",
            Self::Release => "release",
            Self::Refund => "refund",
            Self::Freeze => "freeze it",
            Self::Resolve => "resolve it",
        }
    }
}

/// The context a message is written in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scene<'a> {
    pub(crate) id: B256,
    pub(crate) action: Action,
    pub(crate) escrow: Address,
    pub(crate) token: &'a TokenMeta,
    pub(crate) order: Option<&'a OnChain>,
}

/// Where a violation was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Checked against the chain's state before sending anything.
    PreCheck,
    /// The node's simulation (eth_call / gas estimation) reverted; nothing was sent.
    Simulation,
    /// The transaction was mined and reverted.
    Mined,
    /// A transaction was sent (and, unless the message says otherwise, succeeded), then a later step
    /// failed: sending it again could move funds twice.
    Sent,
}

/// A broken rule: the rule (the contract's or token's error name) and a sentence naming it.
#[derive(Debug, Clone)]
pub(crate) struct Violation {
    pub(crate) rule: String,
    pub(crate) message: String,
    pub(crate) stage: Stage,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match self.stage {
            Stage::PreCheck => f.write_str(" [checked before sending: no transaction was sent]"),
            Stage::Simulation => f.write_str(" [the node's simulation reverted: no transaction was sent]"),
            Stage::Mined => f.write_str(" [the transaction was mined and reverted]"),
            Stage::Sent => f.write_str(" [a transaction was sent: check it before sending anything again]"),
        }
    }
}

impl std::error::Error for Violation {}

/// A rule the contract or the token enforces.
#[derive(Debug, Clone)]
pub(crate) enum Rule {
    Escrow(IHoldfastEscrowErrors),
    Token(TokenErrors),
}

impl From<IHoldfastEscrowErrors> for Rule {
    fn from(e: IHoldfastEscrowErrors) -> Self {
        Self::Escrow(e)
    }
}

impl From<TokenErrors> for Rule {
    fn from(e: TokenErrors) -> Self {
        Self::Token(e)
    }
}

pub(crate) fn status_name(s: Status) -> &'static str {
    match s {
        Status::None => "unknown",
        Status::Held => "held",
        Status::Delivered => "delivered",
        Status::Frozen => "frozen",
        Status::Settled => "settled",
        _ => "invalid",
    }
}

fn u64_of(v: U256) -> u64 {
    v.try_into().unwrap_or(u64::MAX)
}

/// The violation for `rule` found at `stage`.
pub(crate) fn violation(rule: &Rule, sc: &Scene<'_>, stage: Stage) -> Violation {
    let (name, message) = explain(rule, sc);
    Violation { rule: name.to_string(), message, stage }
}

/// Decode revert data into a violation (escrow errors, token errors, `Error(string)`, panics).
pub(crate) fn decode_revert(data: &[u8], sc: &Scene<'_>, stage: Stage) -> Violation {
    if let Ok(e) = IHoldfastEscrowErrors::abi_decode(data) {
        return violation(&Rule::Escrow(e), sc, stage);
    }
    if let Ok(e) = TokenErrors::abi_decode(data) {
        return violation(&Rule::Token(e), sc, stage);
    }
    let id = sc.id;
    let message = match decode_revert_reason(data) {
        Some(reason) => format!("order {id:#x}: the call reverted: {reason}"),
        None if data.is_empty() => format!("order {id:#x}: the call reverted without a reason"),
        None => format!(
            "order {id:#x}: the call reverted with unknown data {}",
            alloy::hex::encode_prefixed(data)
        ),
    };
    Violation { rule: "Revert".into(), message, stage }
}

/// `(rule name, sentence)` for a broken rule.
pub(crate) fn explain(rule: &Rule, sc: &Scene<'_>) -> (&'static str, String) {
    match rule {
        Rule::Escrow(e) => explain_escrow(e, sc),
        Rule::Token(e) => explain_token(e, sc),
    }
}

fn frozen_sentence(id: B256, o: Option<&OnChain>) -> String {
    match o {
        Some(o) => {
            let timeout = o.deadline();
            format!(
                "order {id:#x}: frozen since {}; only the arbiter {} can settle it (from {} anyone can apply the \
                 default outcome with resolveByTimeout)",
                utc(timeout.saturating_sub(FREEZE_TIMEOUT)),
                o.arbiter,
                utc(timeout)
            )
        }
        None => format!("order {id:#x}: frozen; only its arbiter can settle it"),
    }
}

fn explain_escrow(e: &IHoldfastEscrowErrors, sc: &Scene<'_>) -> (&'static str, String) {
    use IHoldfastEscrowErrors as E;
    let t = sc.token;
    let o = sc.order;
    match e {
        E::ZeroOrderId(_) => ("ZeroOrderId", "the order id 0x00…00 is reserved; use another id".into()),
        E::OrderExists(x) => (
            "OrderExists",
            format!(
                "order {:#x}: this id is already used (status {}); order ids are unique forever, so lock under \
                 another id",
                x.orderId,
                status_name(x.status)
            ),
        ),
        E::InvalidStatus(x) => {
            let id = x.orderId;
            let msg = match (x.status, sc.action) {
                (Status::None, _) => {
                    format!("order {id:#x}: no such order on escrow {} (never locked)", sc.escrow)
                }
                (Status::Settled, _) => {
                    format!(
                        "order {id:#x}: already settled; nothing remains in escrow, so it cannot {}",
                        sc.action.verb()
                    )
                }
                (Status::Frozen, _) => frozen_sentence(id, o),
                (Status::Delivered, Action::Deliver) => {
                    format!("order {id:#x}: already delivered; delivery can be marked only once, while held")
                }
                (s, Action::Resolve) => format!(
                    "order {id:#x}: is {}, not frozen; the arbiter resolves only frozen orders",
                    status_name(s)
                ),
                (s, a) => {
                    format!("order {id:#x}: is {}; it cannot {} in this status", status_name(s), a.verb())
                }
            };
            ("InvalidStatus", msg)
        }
        E::InvalidPayee(x) => (
            "InvalidPayee",
            format!(
                "the payee {} is not allowed: it must be non-zero and differ from the payer and the escrow",
                x.payee
            ),
        ),
        E::InvalidArbiter(x) => (
            "InvalidArbiter",
            format!(
                "the arbiter {} is not allowed: it must differ from the payer, the payee and the escrow (omit \
                 --arbiter for an order that can never be frozen)",
                x.arbiter
            ),
        ),
        E::InvalidAmount(x) => (
            "InvalidAmount",
            format!(
                "the amount {} is not allowed: an order locks 1 to 2^96-1 base units ({} max)",
                t.units(x.amount),
                t.units(U256::from(u128::MAX >> 32))
            ),
        ),
        E::InvalidDeliverBy(x) => {
            let by = u64_of(x.deliverBy);
            let now = u64_of(x.currentTime);
            let msg = if by <= now {
                format!("deliver-by {} is not in the future (chain time {})", utc(by), utc(now))
            } else {
                format!(
                    "deliver-by {} is too far in the future (its deadlines must fit 40-bit timestamps)",
                    utc(by)
                )
            };
            ("InvalidDeliverBy", msg)
        }
        E::DepositMismatch(x) => (
            "DepositMismatch",
            format!(
                "order {:#x}: the escrow received {} instead of {}; fee-on-transfer tokens are not supported",
                x.orderId,
                t.units(x.received),
                t.units(x.expected)
            ),
        ),
        E::PermitFailed(x) => (
            "PermitFailed",
            format!(
                "order {:#x}: the token rejected the permit and {}'s allowance to the escrow ({}) does not cover {}",
                x.orderId,
                x.payer,
                t.units(x.allowance),
                t.units(x.amount)
            ),
        ),
        E::AmountExceedsRemaining(x) => {
            let msg = if x.amount.is_zero() {
                format!("order {:#x}: the amount must be at least one base unit", x.orderId)
            } else {
                format!(
                    "order {:#x}: {} exceeds the {} remaining in escrow",
                    x.orderId,
                    t.units(x.amount),
                    t.units(x.remaining)
                )
            };
            ("AmountExceedsRemaining", msg)
        }
        E::NotPayee(x) => {
            let msg = if sc.action == Action::Freeze {
                format!(
                    "order {:#x}: only the payee {} can freeze an order that is not delivered yet (you are {}); \
                     before delivery the payer is protected by the expiry",
                    x.orderId, x.payee, x.caller
                )
            } else {
                format!(
                    "order {:#x}: only the payee {} can {} (you are {})",
                    x.orderId,
                    x.payee,
                    sc.action.verb(),
                    x.caller
                )
            };
            ("NotPayee", msg)
        }
        E::NotParty(x) => (
            "NotParty",
            format!(
                "order {:#x}: only the payer or the payee can freeze it (you are {})",
                x.orderId, x.caller
            ),
        ),
        E::NotArbiter(x) => (
            "NotArbiter",
            format!(
                "order {:#x}: only the arbiter {} can resolve it (you are {})",
                x.orderId, x.arbiter, x.caller
            ),
        ),
        E::ReleaseNotAllowed(x) => {
            let payer = o.map(|o| format!(" {}", o.order.payer)).unwrap_or_default();
            let msg = if x.releasableAt.is_zero() {
                format!(
                    "order {:#x}: not delivered, so only the payer{payer} can release it (you are {})",
                    x.orderId, x.caller
                )
            } else {
                format!(
                    "order {:#x}: the dispute window is open until {}; only the payer{payer} can release before \
                     then (you are {})",
                    x.orderId,
                    utc(u64_of(x.releasableAt)),
                    x.caller
                )
            };
            ("ReleaseNotAllowed", msg)
        }
        E::RefundNotAllowed(x) => {
            let payee = o.map(|o| format!(" {}", o.order.payee)).unwrap_or_default();
            let msg = if x.expiresAt.is_zero() {
                format!(
                    "order {:#x}: delivered orders never expire; only the payee{payee} can refund it (you are {})",
                    x.orderId, x.caller
                )
            } else {
                format!(
                    "order {:#x}: only the payee{payee} can refund before the order expires at {} (you are {})",
                    x.orderId,
                    utc(u64_of(x.expiresAt)),
                    x.caller
                )
            };
            ("RefundNotAllowed", msg)
        }
        E::MustSettleRemainder(x) => (
            "MustSettleRemainder",
            format!(
                "order {:#x}: a timeout release or refund moves the whole remainder ({}), not {}; omit AMOUNT",
                x.orderId,
                t.units(x.remaining),
                t.units(x.amount)
            ),
        ),
        E::DeliveryDeadlinePassed(x) => (
            "DeliveryDeadlinePassed",
            format!(
                "order {:#x}: the delivery deadline passed at {}; it can no longer be delivered (anyone can now \
                 refund it to the payer)",
                x.orderId,
                utc(u64_of(x.deliverBy))
            ),
        ),
        E::NoArbiter(x) => {
            ("NoArbiter", format!("order {:#x}: it has no arbiter, so it can never be frozen", x.orderId))
        }
        E::FreezeWindowClosed(x) => {
            let delivered = o.is_some_and(|o| o.status() == Status::Delivered);
            let what = if delivered { "the dispute window closed" } else { "the delivery deadline passed" };
            (
                "FreezeWindowClosed",
                format!(
                    "order {:#x}: {what} at {}, so a timeout outcome is available and it can no longer be frozen",
                    x.orderId,
                    utc(u64_of(x.deadline))
                ),
            )
        }
        E::ArbiterTimeoutNotReached(x) => (
            "ArbiterTimeoutNotReached",
            format!(
                "order {:#x}: the arbiter has until {} to resolve it; the default outcome applies only after",
                x.orderId,
                utc(u64_of(x.timeoutAt))
            ),
        ),
        E::LengthMismatch(x) => (
            "LengthMismatch",
            format!(
                "{} order ids but {} amounts: the batch needs one amount per order",
                x.orderIds, x.amounts
            ),
        ),
        E::NothingToWithdraw(x) => {
            ("NothingToWithdraw", format!("{} has no credited funds to withdraw", x.account))
        }
        E::InvalidToken(x) => ("InvalidToken", format!("the token {} has no code", x.token)),
    }
}

fn explain_token(e: &TokenErrors, sc: &Scene<'_>) -> (&'static str, String) {
    use TokenErrors as E;
    let t = sc.token;
    let id = sc.id;
    match e {
        E::ERC20InsufficientBalance(x) => (
            "InsufficientBalance",
            format!(
                "order {id:#x}: {} holds {}, less than the {} to lock",
                x.sender,
                t.units(x.balance),
                t.units(x.needed)
            ),
        ),
        E::ERC20InsufficientAllowance(x) => (
            "InsufficientAllowance",
            format!(
                "order {id:#x}: the escrow {} may spend only {} of the payer's {}; {} is needed (approve it, or \
                 lock with --permit or --gasless)",
                x.spender,
                t.units(x.allowance),
                t.symbol,
                t.units(x.needed)
            ),
        ),
        E::ERC20InvalidSender(x) => {
            ("InvalidSender", format!("the token refuses transfers from {}", x.sender))
        }
        E::ERC20InvalidReceiver(x) => {
            ("InvalidReceiver", format!("the token refuses transfers to {}", x.receiver))
        }
        E::ERC20InvalidApprover(x) => {
            ("InvalidApprover", format!("the token refuses approvals from {}", x.approver))
        }
        E::ERC20InvalidSpender(x) => {
            ("InvalidSpender", format!("the token refuses approvals to {}", x.spender))
        }
        E::ERC2612ExpiredSignature(x) => (
            "PermitExpired",
            format!("order {id:#x}: the permit expired at {}; sign a new one", utc(u64_of(x.deadline))),
        ),
        E::ERC2612InvalidSigner(x) => (
            "PermitInvalidSigner",
            format!("order {id:#x}: the permit was signed by {}, not by the payer {}", x.signer, x.owner),
        ),
        E::SafeERC20FailedOperation(x) => {
            ("TokenTransferFailed", format!("order {id:#x}: the token {} refused the transfer", x.token))
        }
        E::ECDSAInvalidSignature(_) | E::ECDSAInvalidSignatureS(_) | E::ECDSAInvalidSignatureLength(_) => (
            "InvalidSignature",
            format!(
                "order {id:#x}: the token rejected the signature as malformed (v must be 27 or 28 and s in the \
                 lower half of the curve order)"
            ),
        ),
        E::AccountBlacklisted(x) => (
            "AccountBlacklisted",
            format!(
                "order {id:#x}: the token has blacklisted {}; it cannot send or receive {}",
                x.account, t.symbol
            ),
        ),
        E::AuthorizationNotYetValid(x) => (
            "AuthorizationNotYetValid",
            format!("order {id:#x}: the authorization is not valid before {}", utc(u64_of(x.validAfter))),
        ),
        E::AuthorizationExpired(x) => (
            "AuthorizationExpired",
            format!(
                "order {id:#x}: the authorization expired at {}; the payer must sign a new one",
                utc(u64_of(x.validBefore))
            ),
        ),
        E::AuthorizationUsedOrCanceled(x) => (
            "AuthorizationUsedOrCanceled",
            format!(
                "order {id:#x}: {}'s authorization with nonce {:#x} was already used or cancelled",
                x.authorizer, x.nonce
            ),
        ),
        E::InvalidSignature(_) => (
            "InvalidSignature",
            format!(
                "order {id:#x}: the signature does not match the payer and these exact terms (was the document \
                 altered?)"
            ),
        ),
        E::CallerMustBePayee(x) => (
            "CallerMustBePayee",
            format!(
                "order {id:#x}: the token accepts the authorization only from {}, not {}",
                x.payee, x.caller
            ),
        ),
        E::ReentrancyGuardReentrantCall(_) => ("Reentrancy", "the escrow refused a reentrant call".into()),
    }
}

// ------------------------------------------------------------------ pre-checks (mirror the contract)

/// The terms of a new order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Terms {
    pub(crate) id: B256,
    pub(crate) payer: Address,
    pub(crate) payee: Address,
    pub(crate) amount: U256,
    pub(crate) arbiter: Address,
    pub(crate) deliver_by: u64,
    pub(crate) dispute_window: u32,
}

/// `_record`'s checks. `at` is the earliest time the transaction can execute (latest block + 1).
pub(crate) fn check_lock(
    t: &Terms,
    existing: Status,
    escrow: Address,
    at: u64,
) -> Option<IHoldfastEscrowErrors> {
    use IHoldfastEscrow as I;
    use IHoldfastEscrowErrors as E;
    if t.id.is_zero() {
        return Some(E::ZeroOrderId(I::ZeroOrderId {}));
    }
    if existing != Status::None {
        return Some(E::OrderExists(I::OrderExists { orderId: t.id, status: existing }));
    }
    if t.payee.is_zero() || t.payee == t.payer || t.payee == escrow {
        return Some(E::InvalidPayee(I::InvalidPayee { payee: t.payee }));
    }
    if !t.arbiter.is_zero() && (t.arbiter == t.payer || t.arbiter == t.payee || t.arbiter == escrow) {
        return Some(E::InvalidArbiter(I::InvalidArbiter { arbiter: t.arbiter }));
    }
    if t.amount.is_zero() || t.amount > U256::from(u128::MAX >> 32) {
        return Some(E::InvalidAmount(I::InvalidAmount { amount: t.amount }));
    }
    let end = t.deliver_by as u128 + t.dispute_window as u128 + FREEZE_TIMEOUT as u128;
    if t.deliver_by <= at || end > (1u128 << 40) - 1 {
        // `at`, not the latest block's time: the earliest time the lock can execute at, so that a
        // deliver-by of exactly `at` is explained as "not in the future", never as "too far".
        return Some(E::InvalidDeliverBy(I::InvalidDeliverBy {
            deliverBy: U256::from(t.deliver_by),
            currentTime: U256::from(at),
        }));
    }
    None
}

/// `deliver`'s checks.
pub(crate) fn check_deliver(
    id: B256,
    o: &OnChain,
    caller: Address,
    at: u64,
) -> Option<IHoldfastEscrowErrors> {
    use IHoldfastEscrow as I;
    use IHoldfastEscrowErrors as E;
    if o.status() != Status::Held {
        return Some(E::InvalidStatus(I::InvalidStatus { orderId: id, status: o.status() }));
    }
    if caller != o.order.payee {
        return Some(E::NotPayee(I::NotPayee { orderId: id, caller, payee: o.order.payee }));
    }
    if at > o.deadline() {
        return Some(E::DeliveryDeadlinePassed(I::DeliveryDeadlinePassed {
            orderId: id,
            deliverBy: U256::from(o.deadline()),
        }));
    }
    None
}

/// `release`'s checks.
pub(crate) fn check_release(
    id: B256,
    o: &OnChain,
    caller: Address,
    amount: U256,
    at: u64,
) -> Option<IHoldfastEscrowErrors> {
    use IHoldfastEscrow as I;
    use IHoldfastEscrowErrors as E;
    let status = o.status();
    if status != Status::Held && status != Status::Delivered {
        return Some(E::InvalidStatus(I::InvalidStatus { orderId: id, status }));
    }
    let remaining = o.remaining();
    if caller != o.order.payer {
        let releasable_at = if status == Status::Delivered { o.deadline() } else { 0 };
        if releasable_at == 0 || at < releasable_at {
            return Some(E::ReleaseNotAllowed(I::ReleaseNotAllowed {
                orderId: id,
                caller,
                releasableAt: U256::from(releasable_at),
            }));
        }
        if amount != remaining {
            return Some(E::MustSettleRemainder(I::MustSettleRemainder { orderId: id, amount, remaining }));
        }
    } else if amount.is_zero() || amount > remaining {
        return Some(E::AmountExceedsRemaining(I::AmountExceedsRemaining { orderId: id, amount, remaining }));
    }
    None
}

/// `refund`'s checks.
pub(crate) fn check_refund(
    id: B256,
    o: &OnChain,
    caller: Address,
    amount: U256,
    at: u64,
) -> Option<IHoldfastEscrowErrors> {
    use IHoldfastEscrow as I;
    use IHoldfastEscrowErrors as E;
    let status = o.status();
    if status != Status::Held && status != Status::Delivered {
        return Some(E::InvalidStatus(I::InvalidStatus { orderId: id, status }));
    }
    let remaining = o.remaining();
    if caller != o.order.payee {
        let expires_at = if status == Status::Held { o.deadline() } else { 0 };
        if expires_at == 0 || at <= expires_at {
            return Some(E::RefundNotAllowed(I::RefundNotAllowed {
                orderId: id,
                caller,
                expiresAt: U256::from(expires_at),
            }));
        }
        if amount != remaining {
            return Some(E::MustSettleRemainder(I::MustSettleRemainder { orderId: id, amount, remaining }));
        }
    } else if amount.is_zero() || amount > remaining {
        return Some(E::AmountExceedsRemaining(I::AmountExceedsRemaining { orderId: id, amount, remaining }));
    }
    None
}

/// `freeze`'s checks.
pub(crate) fn check_freeze(id: B256, o: &OnChain, caller: Address, at: u64) -> Option<IHoldfastEscrowErrors> {
    use IHoldfastEscrow as I;
    use IHoldfastEscrowErrors as E;
    let status = o.status();
    if status != Status::Held && status != Status::Delivered {
        return Some(E::InvalidStatus(I::InvalidStatus { orderId: id, status }));
    }
    if caller != o.order.payee {
        if caller != o.order.payer {
            return Some(E::NotParty(I::NotParty { orderId: id, caller }));
        }
        if status == Status::Held {
            return Some(E::NotPayee(I::NotPayee { orderId: id, caller, payee: o.order.payee }));
        }
    }
    if !o.order.hasArbiter {
        return Some(E::NoArbiter(I::NoArbiter { orderId: id }));
    }
    let deadline = o.deadline();
    let closed = if status == Status::Held { at > deadline } else { at >= deadline };
    if closed {
        return Some(E::FreezeWindowClosed(I::FreezeWindowClosed {
            orderId: id,
            deadline: U256::from(deadline),
        }));
    }
    None
}

/// `resolve`'s checks.
pub(crate) fn check_resolve(
    id: B256,
    o: &OnChain,
    caller: Address,
    to_payee: U256,
) -> Option<IHoldfastEscrowErrors> {
    use IHoldfastEscrow as I;
    use IHoldfastEscrowErrors as E;
    let status = o.status();
    if status != Status::Frozen {
        return Some(E::InvalidStatus(I::InvalidStatus { orderId: id, status }));
    }
    if caller != o.arbiter {
        return Some(E::NotArbiter(I::NotArbiter { orderId: id, caller, arbiter: o.arbiter }));
    }
    let remaining = o.remaining();
    if to_payee > remaining {
        return Some(E::AmountExceedsRemaining(I::AmountExceedsRemaining {
            orderId: id,
            amount: to_payee,
            remaining,
        }));
    }
    None
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{Uint, address};

    use super::*;

    fn token() -> TokenMeta {
        TokenMeta { address: Address::ZERO, symbol: "USDC".into(), decimals: 6 }
    }

    fn order(status: Status, deadline: u64) -> OnChain {
        OnChain {
            order: IHoldfastEscrow::Order {
                payer: address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
                remaining: Uint::from(12_500_000u64),
                payee: address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
                deadline: Uint::from(deadline),
                disputeWindow: 3_600,
                status,
                delivered: status == Status::Delivered,
                hasArbiter: true,
            },
            arbiter: address!("0x90F79bf6EB2c4f870365E785982E1f161e4d9ff2"),
        }
    }

    #[test]
    fn frozen_release_names_the_arbiter_and_the_time() {
        let t = token();
        let o = order(Status::Frozen, 1_795_255_200 + FREEZE_TIMEOUT);
        let id = B256::with_last_byte(1);
        let e = check_release(id, &o, o.order.payer, U256::from(1u64), 1_795_255_300).unwrap();
        let sc = Scene { id, action: Action::Release, escrow: Address::ZERO, token: &t, order: Some(&o) };
        let v = violation(&Rule::Escrow(e), &sc, Stage::PreCheck);
        assert_eq!(v.rule, "InvalidStatus");
        assert!(
            v.message.starts_with(&format!(
                "order {id:#x}: frozen since 2026-11-21 10:00:00 UTC; only the arbiter {} can settle it",
                o.arbiter
            )),
            "{v}"
        );
        assert!(v.to_string().contains("no transaction was sent"));
    }

    #[test]
    fn dispute_window_and_round_trip_through_revert_data() {
        let t = token();
        let o = order(Status::Delivered, 1_795_255_200);
        let id = B256::with_last_byte(2);
        let stranger = Address::with_last_byte(9);
        let e = check_release(id, &o, stranger, o.remaining(), 1_795_255_000).unwrap();
        let sc = Scene { id, action: Action::Release, escrow: Address::ZERO, token: &t, order: Some(&o) };
        let pre = violation(&Rule::Escrow(e.clone()), &sc, Stage::PreCheck);
        assert!(pre.message.contains("the dispute window is open until 2026-11-21 10:00:00 UTC"), "{pre}");
        assert!(
            pre.message.contains("only the payer 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 can release")
        );
        // The revert path decodes the same error into the same sentence.
        let reverted = decode_revert(&e.abi_encode(), &sc, Stage::Simulation);
        assert_eq!(reverted.rule, pre.rule);
        assert_eq!(reverted.message, pre.message);
        // After the window anyone may release, but only the whole remainder.
        let e = check_release(id, &o, stranger, U256::from(1u64), 1_795_255_200).unwrap();
        assert!(violation(&Rule::Escrow(e), &sc, Stage::PreCheck).message.contains("omit AMOUNT"));
        assert!(check_release(id, &o, stranger, o.remaining(), 1_795_255_200).is_none());
    }

    #[test]
    fn token_errors_and_string_reverts() {
        let t = token();
        let id = B256::with_last_byte(3);
        let sc = Scene { id, action: Action::Lock, escrow: Address::ZERO, token: &t, order: None };
        let e = TokenErrors::ERC20InsufficientBalance(ITokenErrors::ERC20InsufficientBalance {
            sender: Address::with_last_byte(1),
            balance: U256::from(5_000_000u64),
            needed: U256::from(12_500_000u64),
        });
        let v = decode_revert(&e.abi_encode(), &sc, Stage::Simulation);
        assert!(v.message.ends_with("holds 5 USDC, less than the 12.5 USDC to lock"), "{v}");
        // OpenZeppelin ECDSA (inside EIP-2612 / EIP-3009 tokens): named, not shown as raw data.
        let e = TokenErrors::ECDSAInvalidSignatureS(ITokenErrors::ECDSAInvalidSignatureS { s: B256::ZERO });
        let v = decode_revert(&e.abi_encode(), &sc, Stage::Simulation);
        assert_eq!(v.rule, "InvalidSignature", "{v}");
        let e =
            TokenErrors::ERC20InvalidSpender(ITokenErrors::ERC20InvalidSpender { spender: Address::ZERO });
        assert_eq!(decode_revert(&e.abi_encode(), &sc, Stage::Simulation).rule, "InvalidSpender");
        // Unknown revert data is shown, not swallowed; a panic is named.
        let v = decode_revert(&[0xde, 0xad, 0xbe, 0xef, 1], &sc, Stage::Simulation);
        assert!(v.message.ends_with("unknown data 0xdeadbeef01"), "{v}");
        let panic = alloy::sol_types::Panic::from(0x11u64);
        let v = decode_revert(&alloy::sol_types::SolError::abi_encode(&panic), &sc, Stage::Simulation);
        assert!(v.message.contains("overflow"), "{v}");
        let s = alloy::sol_types::Revert::from("FiatTokenV2: authorization is expired");
        let v = decode_revert(&alloy::sol_types::SolError::abi_encode(&s), &sc, Stage::Simulation);
        assert!(v.message.contains("FiatTokenV2: authorization is expired"), "{v}");
    }

    #[test]
    fn deliver_by_at_the_next_block_is_not_in_the_future() {
        let t = token();
        let id = B256::with_last_byte(4);
        let now = 1_795_255_200u64;
        let terms = Terms {
            id,
            payer: Address::with_last_byte(1),
            payee: Address::with_last_byte(2),
            amount: U256::from(1u64),
            arbiter: Address::ZERO,
            deliver_by: now + 1,
            dispute_window: 0,
        };
        let sc = Scene { id, action: Action::Lock, escrow: Address::ZERO, token: &t, order: None };
        let e = check_lock(&terms, Status::None, Address::with_last_byte(9), now + 1).unwrap();
        let v = violation(&Rule::Escrow(e), &sc, Stage::PreCheck);
        assert!(v.message.contains("is not in the future"), "{v}");
        let far = Terms { deliver_by: (1u64 << 40) - FREEZE_TIMEOUT, ..terms };
        let e = check_lock(&far, Status::None, Address::with_last_byte(9), now + 1).unwrap();
        assert!(violation(&Rule::Escrow(e), &sc, Stage::PreCheck).message.contains("too far"));
        let ok = Terms { deliver_by: now + 2, ..terms };
        assert!(check_lock(&ok, Status::None, Address::with_last_byte(9), now + 1).is_none());
        // Amounts: 1 to 2^96-1 base units, as the contract stores them.
        let max = U256::from(u128::MAX >> 32);
        assert!(check_lock(&Terms { amount: max, ..ok }, Status::None, Address::ZERO, now + 1).is_none());
        for bad in [U256::ZERO, max + U256::from(1u64)] {
            let e = check_lock(&Terms { amount: bad, ..ok }, Status::None, Address::ZERO, now + 1);
            assert!(matches!(e, Some(IHoldfastEscrowErrors::InvalidAmount(_))), "{bad}");
        }
    }
}
