// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IHoldfastEscrow
/// @notice Types, events and errors of the Holdfast escrow. Every event indexes `orderId` (except the
///         account-level {Withdrawn}) and carries the order's post-change `remaining` and `status`, so an
///         indexer can rebuild every order from the logs alone.
interface IHoldfastEscrow {
    /// @notice Lifecycle status of an order. `None` means the order id was never used; `Settled` is final.
    enum Status {
        None,
        Held,
        Delivered,
        Frozen,
        Settled
    }

    /// @notice An order as stored (two storage slots, plus one for a non-zero arbiter's address).
    /// @dev `deadline` depends on `status`: Held → deliverBy; Delivered → releasableAt (delivery time +
    ///      disputeWindow); Frozen → the time after which the default outcome may be executed;
    ///      Settled → the deadline in force when the order settled. In storage, a settled order keeps its
    ///      last active status with `remaining == 0`; {getOrder} and events report `Settled`.
    struct Order {
        address payer;
        uint96 remaining;
        address payee;
        uint40 deadline;
        uint32 disputeWindow;
        Status status;
        bool delivered;
        bool hasArbiter;
    }

    // ------------------------------------------------------------------ events

    /// @notice Funds were deposited for a new order. Carries all terms; `amount` is also the remaining.
    event Locked(
        bytes32 indexed orderId,
        address indexed payer,
        address indexed payee,
        address arbiter,
        uint256 amount,
        uint64 deliverBy,
        uint32 disputeWindow,
        Status status
    );

    /// @notice The payee marked the order delivered; auto-release is possible from `releasableAt`.
    event Delivered(bytes32 indexed orderId, bytes32 evidence, uint64 releasableAt, uint256 remaining, Status status);

    /// @notice `amount` went (or was credited, see {PayoutDeferred}) to the payee. `by` is the caller: the
    ///         payer, or anyone executing the auto-release.
    event Released(bytes32 indexed orderId, address by, uint256 amount, uint256 remaining, Status status);

    /// @notice `amount` went (or was credited) back to the payer. `by` is the caller: the payee, or anyone
    ///         executing the expiry refund.
    event Refunded(bytes32 indexed orderId, address by, uint256 amount, uint256 remaining, Status status);

    /// @notice A party froze the order; only its arbiter can settle it until `timeoutAt`, when anyone may
    ///         execute the default outcome (see {resolveByTimeout}).
    event Frozen(
        bytes32 indexed orderId, address by, bytes32 reason, uint64 timeoutAt, uint256 remaining, Status status
    );

    /// @notice A frozen order was settled: by its arbiter, or by the timeout default (`byTimeout`).
    event Resolved(
        bytes32 indexed orderId,
        address by,
        uint256 toPayee,
        uint256 toPayer,
        bool byTimeout,
        uint256 remaining,
        Status status
    );

    /// @notice A payout transfer to `recipient` failed (for example a blacklisted address); the amount was
    ///         credited to `recipient`, who can {withdraw} it later. The order is settled all the same.
    event PayoutDeferred(bytes32 indexed orderId, address indexed recipient, uint256 amount);

    /// @notice Credited funds were paid out to `account`.
    event Withdrawn(address indexed account, uint256 amount);

    // ------------------------------------------------------------------ errors

    /// @notice The zero order id is reserved.
    error ZeroOrderId();
    /// @notice The order id was already used (order ids are unique forever, even after settlement).
    error OrderExists(bytes32 orderId, Status status);
    /// @notice The order is not in a status that allows this call.
    error InvalidStatus(bytes32 orderId, Status status);
    /// @notice The payee is zero, the payer, or the escrow itself.
    error InvalidPayee(address payee);
    /// @notice The arbiter is the payer, the payee, or the escrow itself.
    error InvalidArbiter(address arbiter);
    /// @notice The amount is zero or larger than 2^96-1 base units.
    error InvalidAmount(uint256 amount);
    /// @notice `deliverBy` is not in the future, or `deliverBy + disputeWindow + FREEZE_TIMEOUT` exceeds the
    ///         uint40 time range.
    error InvalidDeliverBy(uint256 deliverBy, uint256 currentTime);
    /// @notice The escrow received a different amount than it transferred in (fee-on-transfer token).
    error DepositMismatch(bytes32 orderId, uint256 expected, uint256 received);
    /// @notice The permit failed and the existing allowance does not cover the amount.
    error PermitFailed(bytes32 orderId, address payer, uint256 allowance, uint256 amount);
    /// @notice Zero, or more than the order's remaining amount.
    error AmountExceedsRemaining(bytes32 orderId, uint256 amount, uint256 remaining);
    /// @notice Only the payee may call this (also: only the payee may freeze an undelivered order).
    error NotPayee(bytes32 orderId, address caller, address payee);
    /// @notice Only the payer or the payee may call this.
    error NotParty(bytes32 orderId, address caller);
    /// @notice Only the arbiter may call this.
    error NotArbiter(bytes32 orderId, address caller, address arbiter);
    /// @notice Only the payer may release before `releasableAt` (0: the order is not delivered, so no
    ///         auto-release is scheduled).
    error ReleaseNotAllowed(bytes32 orderId, address caller, uint256 releasableAt);
    /// @notice Only the payee may refund before the order expires at `expiresAt` (0: the order was
    ///         delivered, so it never expires).
    error RefundNotAllowed(bytes32 orderId, address caller, uint256 expiresAt);
    /// @notice A timeout release/refund moves the whole remainder; `amount` must equal it.
    error MustSettleRemainder(bytes32 orderId, uint256 amount, uint256 remaining);
    /// @notice The delivery deadline passed.
    error DeliveryDeadlinePassed(bytes32 orderId, uint256 deliverBy);
    /// @notice The order has no arbiter and can never be frozen.
    error NoArbiter(bytes32 orderId);
    /// @notice A timeout outcome is already available (expiry or auto-release from `deadline`), so the
    ///         order can no longer be frozen.
    error FreezeWindowClosed(bytes32 orderId, uint256 deadline);
    /// @notice The arbiter's time to resolve runs until `timeoutAt`.
    error ArbiterTimeoutNotReached(bytes32 orderId, uint256 timeoutAt);
    /// @notice Batch arrays differ in length.
    error LengthMismatch(uint256 orderIds, uint256 amounts);
    /// @notice `account` has no credited funds.
    error NothingToWithdraw(address account);
    /// @notice The token address has no code.
    error InvalidToken(address token);

    // ------------------------------------------------------------------ functions

    /// @notice The ERC-20 this escrow holds (fixed at deployment).
    function token() external view returns (address);

    /// @notice Seconds a frozen order waits for its arbiter before the default outcome may be executed.
    function FREEZE_TIMEOUT() external view returns (uint256);

    /// @notice Lock `amount` from the caller (after an ERC-20 approve) for a new order.
    function lock(
        bytes32 orderId,
        address payee,
        uint256 amount,
        address arbiter,
        uint64 deliverBy,
        uint32 disputeWindow
    ) external;

    /// @notice Lock with an EIP-2612 permit from the caller, in one transaction.
    function lockWithPermit(
        bytes32 orderId,
        address payee,
        uint256 amount,
        address arbiter,
        uint64 deliverBy,
        uint32 disputeWindow,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /// @notice Lock with an EIP-3009 `receiveWithAuthorization` signed by `payer`; relayable by anyone.
    function lockWithAuthorization(
        address payer,
        bytes32 orderId,
        address payee,
        uint256 amount,
        address arbiter,
        uint64 deliverBy,
        uint32 disputeWindow,
        uint256 validAfter,
        uint256 validBefore,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /// @notice The EIP-3009 nonce that binds an authorization to all of an order's terms.
    function authorizationNonce(
        bytes32 orderId,
        address payee,
        uint256 amount,
        address arbiter,
        uint64 deliverBy,
        uint32 disputeWindow
    ) external view returns (bytes32);

    /// @notice Payee marks the order delivered.
    function deliver(bytes32 orderId, bytes32 evidence) external;

    /// @notice Release `amount` of the remainder to the payee.
    function release(bytes32 orderId, uint256 amount) external;

    /// @notice Refund `amount` of the remainder to the payer.
    function refund(bytes32 orderId, uint256 amount) external;

    /// @notice {release} for many orders; reverts as a whole if any one fails.
    function releaseMany(bytes32[] calldata orderIds, uint256[] calldata amounts) external;

    /// @notice {refund} for many orders; reverts as a whole if any one fails.
    function refundMany(bytes32[] calldata orderIds, uint256[] calldata amounts) external;

    /// @notice Payer or payee freezes the order for its arbiter.
    function freeze(bytes32 orderId, bytes32 reason) external;

    /// @notice Arbiter settles a frozen order: `toPayee` to the payee, the rest to the payer.
    function resolve(bytes32 orderId, uint256 toPayee) external;

    /// @notice Anyone executes the default outcome of a frozen order whose arbiter did not act in time.
    function resolveByTimeout(bytes32 orderId) external;

    /// @notice Pay out funds credited to `account` after a failed payout.
    function withdraw(address account) external;

    /// @notice Funds credited to `account` after failed payouts.
    function credits(address account) external view returns (uint256);

    /// @notice The stored order and its arbiter (zero for an unknown order id).
    function getOrder(bytes32 orderId) external view returns (Order memory order, address arbiter);
}
