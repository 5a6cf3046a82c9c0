// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IERC3009} from "./interfaces/IERC3009.sol";
import {IHoldfastEscrow} from "./interfaces/IHoldfastEscrow.sol";

/// @title HoldfastEscrow
/// @notice Per-order escrow of one ERC-20 (fixed at deployment) for agent and marketplace payments.
/// @dev No owner, no upgrade, no pause. Only an order's payer, payee, arbiter, or the documented timeouts
///      (executable by anyone) move that order's funds, and only to its payer or payee.
///      Every operation: checks → state write → event → token transfer, under a transient reentrancy guard.
///      A payout that the token refuses (for example a USDC blacklist) is credited to the recipient for a
///      later {withdraw}: the order settles, nothing is stuck, and one bad recipient blocks no other order.
contract HoldfastEscrow is IHoldfastEscrow, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @inheritdoc IHoldfastEscrow
    uint256 public constant FREEZE_TIMEOUT = 30 days;

    /// @inheritdoc IHoldfastEscrow
    address public immutable token;

    mapping(bytes32 orderId => Order) private _orders;
    mapping(bytes32 orderId => address) private _arbiters;

    /// @inheritdoc IHoldfastEscrow
    mapping(address account => uint256) public credits;

    /// @param token_ The ERC-20 this instance escrows (deploy one instance per token).
    constructor(address token_) {
        if (token_.code.length == 0) revert InvalidToken(token_);
        token = token_;
    }

    // ================================================================== lock

    /// @inheritdoc IHoldfastEscrow
    /// @dev The caller is the payer and must have approved at least `amount` to this contract.
    /// @param orderId Unique forever; never reusable.
    /// @param payee Receives releases; must be non-zero and differ from the payer.
    /// @param amount Base units, 1 to 2^96-1.
    /// @param arbiter Settles frozen orders; zero means the order can never be frozen.
    /// @param deliverBy Unix time by which the payee must mark delivery; after it, anyone may refund.
    /// @param disputeWindow Seconds after delivery during which a party may still freeze.
    function lock(
        bytes32 orderId,
        address payee,
        uint256 amount,
        address arbiter,
        uint64 deliverBy,
        uint32 disputeWindow
    ) external nonReentrant {
        _record(msg.sender, orderId, payee, amount, arbiter, deliverBy, disputeWindow);
        uint256 before = IERC20(token).balanceOf(address(this));
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
        _checkReceived(orderId, before, amount);
    }

    /// @inheritdoc IHoldfastEscrow
    /// @dev A permit that fails (for example front-run by someone submitting the same signature) is
    ///      ignored when the allowance already covers `amount`; otherwise {PermitFailed}.
    /// @param orderId See {lock}.
    /// @param payee See {lock}.
    /// @param amount See {lock}; also the permit value.
    /// @param arbiter See {lock}.
    /// @param deliverBy See {lock}.
    /// @param disputeWindow See {lock}.
    /// @param permitDeadline EIP-2612 deadline.
    /// @param v Signature part.
    /// @param r Signature part.
    /// @param s Signature part.
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
    ) external nonReentrant {
        _record(msg.sender, orderId, payee, amount, arbiter, deliverBy, disputeWindow);
        try IERC20Permit(token).permit(msg.sender, address(this), amount, permitDeadline, v, r, s) {}
        catch {
            uint256 allowance = IERC20(token).allowance(msg.sender, address(this));
            if (allowance < amount) revert PermitFailed(orderId, msg.sender, allowance, amount);
        }
        uint256 before = IERC20(token).balanceOf(address(this));
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
        _checkReceived(orderId, before, amount);
    }

    /// @inheritdoc IHoldfastEscrow
    /// @dev The authorization's nonce must be {authorizationNonce} of the terms, so a relayer cannot alter
    ///      any term; the token checks the payer's signature, so the payer is never taken on trust.
    /// @param payer Signer of the authorization (the `from` of the transfer).
    /// @param orderId See {lock}.
    /// @param payee See {lock}.
    /// @param amount See {lock}; also the authorized value.
    /// @param arbiter See {lock}.
    /// @param deliverBy See {lock}.
    /// @param disputeWindow See {lock}.
    /// @param validAfter EIP-3009 validity start.
    /// @param validBefore EIP-3009 validity end.
    /// @param v Signature part.
    /// @param r Signature part.
    /// @param s Signature part.
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
    ) external nonReentrant {
        _record(payer, orderId, payee, amount, arbiter, deliverBy, disputeWindow);
        bytes32 nonce = _authorizationNonce(orderId, payee, amount, arbiter, deliverBy, disputeWindow);
        uint256 before = IERC20(token).balanceOf(address(this));
        IERC3009(token).receiveWithAuthorization(payer, address(this), amount, validAfter, validBefore, nonce, v, r, s);
        _checkReceived(orderId, before, amount);
    }

    /// @inheritdoc IHoldfastEscrow
    /// @dev keccak256(abi.encode(escrow, chainid, orderId, payee, amount, arbiter, deliverBy, disputeWindow)).
    /// @param orderId See {lock}.
    /// @param payee See {lock}.
    /// @param amount See {lock}.
    /// @param arbiter See {lock}.
    /// @param deliverBy See {lock}.
    /// @param disputeWindow See {lock}.
    /// @return The nonce to sign in the EIP-3009 `ReceiveWithAuthorization` message.
    function authorizationNonce(
        bytes32 orderId,
        address payee,
        uint256 amount,
        address arbiter,
        uint64 deliverBy,
        uint32 disputeWindow
    ) external view returns (bytes32) {
        return _authorizationNonce(orderId, payee, amount, arbiter, deliverBy, disputeWindow);
    }

    // ================================================================== lifecycle

    /// @inheritdoc IHoldfastEscrow
    /// @dev Payee only, while Held and not after `deliverBy`. Starts the dispute window: auto-release is
    ///      possible from `block.timestamp + disputeWindow`.
    /// @param orderId The order.
    /// @param evidence Optional hash of the delivery evidence (zero for none); only logged.
    function deliver(bytes32 orderId, bytes32 evidence) external nonReentrant {
        Order storage o = _orders[orderId];
        Status status = _statusOf(o);
        if (status != Status.Held) revert InvalidStatus(orderId, status);
        address payee = o.payee;
        if (msg.sender != payee) revert NotPayee(orderId, msg.sender, payee);
        uint256 deliverBy = o.deadline;
        if (block.timestamp > deliverBy) revert DeliveryDeadlinePassed(orderId, deliverBy);

        uint40 releasableAt = uint40(block.timestamp) + o.disputeWindow;
        o.deadline = releasableAt;
        o.status = Status.Delivered;
        o.delivered = true;
        emit Delivered(orderId, evidence, releasableAt, o.remaining, Status.Delivered);
    }

    /// @inheritdoc IHoldfastEscrow
    /// @dev The payer may release any part of the remainder while Held or Delivered. Anyone else may only
    ///      release the whole remainder, and only from `releasableAt` (delivery + disputeWindow).
    /// @param orderId The order.
    /// @param amount Base units, 1 to the remainder.
    function release(bytes32 orderId, uint256 amount) external nonReentrant {
        _release(orderId, amount);
    }

    /// @inheritdoc IHoldfastEscrow
    /// @dev The payee may refund any part of the remainder while Held or Delivered. Anyone else may only
    ///      refund the whole remainder, and only after `deliverBy` passed without delivery (expiry).
    /// @param orderId The order.
    /// @param amount Base units, 1 to the remainder.
    function refund(bytes32 orderId, uint256 amount) external nonReentrant {
        _refund(orderId, amount);
    }

    /// @inheritdoc IHoldfastEscrow
    /// @param orderIds The orders.
    /// @param amounts The amount for each order, in the same position.
    function releaseMany(bytes32[] calldata orderIds, uint256[] calldata amounts) external nonReentrant {
        if (orderIds.length != amounts.length) revert LengthMismatch(orderIds.length, amounts.length);
        for (uint256 i; i < orderIds.length; ++i) {
            _release(orderIds[i], amounts[i]);
        }
    }

    /// @inheritdoc IHoldfastEscrow
    /// @param orderIds The orders.
    /// @param amounts The amount for each order, in the same position.
    function refundMany(bytes32[] calldata orderIds, uint256[] calldata amounts) external nonReentrant {
        if (orderIds.length != amounts.length) revert LengthMismatch(orderIds.length, amounts.length);
        for (uint256 i; i < orderIds.length; ++i) {
            _refund(orderIds[i], amounts[i]);
        }
    }

    /// @inheritdoc IHoldfastEscrow
    /// @dev On an order with an arbiter, while no timeout outcome is available yet: the payee while Held
    ///      (until `deliverBy`, inclusive); the payer or the payee while Delivered (until `releasableAt`,
    ///      exclusive). The payer cannot freeze an undelivered order: that would block delivery and turn
    ///      into a refund by stalling; before delivery the payer is protected by the expiry. The arbiter then
    ///      has FREEZE_TIMEOUT to {resolve}.
    /// @param orderId The order.
    /// @param reason Free-form reason code or hash; only logged.
    function freeze(bytes32 orderId, bytes32 reason) external nonReentrant {
        Order storage o = _orders[orderId];
        Status status = _statusOf(o);
        if (status != Status.Held && status != Status.Delivered) revert InvalidStatus(orderId, status);
        address payee = o.payee;
        if (msg.sender != payee) {
            if (msg.sender != o.payer) revert NotParty(orderId, msg.sender);
            if (status == Status.Held) revert NotPayee(orderId, msg.sender, payee);
        }
        if (!o.hasArbiter) revert NoArbiter(orderId);
        uint256 deadline = o.deadline;
        if (status == Status.Held ? block.timestamp > deadline : block.timestamp >= deadline) {
            revert FreezeWindowClosed(orderId, deadline);
        }

        // forge-lint: disable-next-line(unsafe-typecast) timestamps fit uint40 until the year 36812
        uint40 timeoutAt = uint40(block.timestamp + FREEZE_TIMEOUT);
        o.deadline = timeoutAt;
        o.status = Status.Frozen;
        emit Frozen(orderId, msg.sender, reason, timeoutAt, o.remaining, Status.Frozen);
    }

    /// @inheritdoc IHoldfastEscrow
    /// @dev Arbiter only, while Frozen (also after the timeout, until someone executes the default).
    /// @param orderId The order.
    /// @param toPayee Base units to the payee, 0 to the remainder; the rest goes to the payer.
    function resolve(bytes32 orderId, uint256 toPayee) external nonReentrant {
        Order storage o = _orders[orderId];
        Status status = _statusOf(o);
        if (status != Status.Frozen) revert InvalidStatus(orderId, status);
        address arbiter = _arbiters[orderId];
        if (msg.sender != arbiter) revert NotArbiter(orderId, msg.sender, arbiter);
        uint256 remaining = o.remaining;
        if (toPayee > remaining) revert AmountExceedsRemaining(orderId, toPayee, remaining);
        _settleFrozen(o, orderId, toPayee, remaining - toPayee, false);
    }

    /// @inheritdoc IHoldfastEscrow
    /// @dev Anyone, once FREEZE_TIMEOUT has passed since the freeze. The default is the outcome the
    ///      timeouts would have produced without the freeze: a delivered order releases its remainder to
    ///      the payee, an undelivered one refunds it to the payer. So freezing can never change an outcome
    ///      just by stalling, and the risk of an absent arbiter stays with whoever chose it (the payer).
    /// @param orderId The order.
    function resolveByTimeout(bytes32 orderId) external nonReentrant {
        Order storage o = _orders[orderId];
        Status status = _statusOf(o);
        if (status != Status.Frozen) revert InvalidStatus(orderId, status);
        uint256 timeoutAt = o.deadline;
        if (block.timestamp < timeoutAt) revert ArbiterTimeoutNotReached(orderId, timeoutAt);
        uint256 remaining = o.remaining;
        if (o.delivered) _settleFrozen(o, orderId, remaining, 0, true);
        else _settleFrozen(o, orderId, 0, remaining, true);
    }

    /// @inheritdoc IHoldfastEscrow
    /// @dev Anyone may trigger it; funds only ever go to `account` itself. Reverts (and keeps the credit)
    ///      while the token still refuses the transfer.
    /// @param account The credited recipient.
    function withdraw(address account) external nonReentrant {
        uint256 amount = credits[account];
        if (amount == 0) revert NothingToWithdraw(account);
        credits[account] = 0;
        emit Withdrawn(account, amount);
        IERC20(token).safeTransfer(account, amount);
    }

    // ================================================================== views

    /// @inheritdoc IHoldfastEscrow
    /// @param orderId The order.
    /// @return order The stored order (all zero if unknown).
    /// @return arbiter The order's arbiter (zero if none).
    function getOrder(bytes32 orderId) external view returns (Order memory order, address arbiter) {
        Order storage o = _orders[orderId];
        order = o;
        order.status = _statusOf(o);
        arbiter = _arbiters[orderId];
    }

    // ================================================================== internals

    function _record(
        address payer,
        bytes32 orderId,
        address payee,
        uint256 amount,
        address arbiter,
        uint64 deliverBy,
        uint32 disputeWindow
    ) private {
        if (orderId == bytes32(0)) revert ZeroOrderId();
        Order storage o = _orders[orderId];
        Status status = _statusOf(o);
        if (status != Status.None) revert OrderExists(orderId, status);
        if (payee == address(0) || payee == payer || payee == address(this)) revert InvalidPayee(payee);
        bool hasArbiter = arbiter != address(0);
        if (hasArbiter && (arbiter == payer || arbiter == payee || arbiter == address(this))) {
            revert InvalidArbiter(arbiter);
        }
        if (amount == 0 || amount > type(uint96).max) revert InvalidAmount(amount);
        // Every later deadline (releasableAt, the freeze timeout) must fit the uint40 field too.
        if (deliverBy <= block.timestamp || uint256(deliverBy) + disputeWindow + FREEZE_TIMEOUT > type(uint40).max) {
            revert InvalidDeliverBy(deliverBy, block.timestamp);
        }

        o.payer = payer;
        // forge-lint: disable-next-line(unsafe-typecast) checked above: amount <= type(uint96).max
        o.remaining = uint96(amount);
        o.payee = payee;
        // forge-lint: disable-next-line(unsafe-typecast) checked above: deliverBy <= type(uint40).max
        o.deadline = uint40(deliverBy);
        o.disputeWindow = disputeWindow;
        o.status = Status.Held;
        if (hasArbiter) {
            o.hasArbiter = true;
            _arbiters[orderId] = arbiter;
        }
        emit Locked(orderId, payer, payee, arbiter, amount, deliverBy, disputeWindow, Status.Held);
    }

    /// @dev `Settled` is not stored (saves a storage write per settlement): an order with a status and
    ///      nothing remaining is settled, since every order locks a non-zero amount.
    function _statusOf(Order storage o) private view returns (Status status) {
        status = o.status;
        if (status != Status.None && o.remaining == 0) status = Status.Settled;
    }

    function _checkReceived(bytes32 orderId, uint256 before, uint256 amount) private view {
        uint256 received = IERC20(token).balanceOf(address(this)) - before;
        if (received != amount) revert DepositMismatch(orderId, amount, received);
    }

    function _authorizationNonce(
        bytes32 orderId,
        address payee,
        uint256 amount,
        address arbiter,
        uint64 deliverBy,
        uint32 disputeWindow
    ) private view returns (bytes32) {
        return keccak256(
            abi.encode(address(this), block.chainid, orderId, payee, amount, arbiter, deliverBy, disputeWindow)
        );
    }

    function _release(bytes32 orderId, uint256 amount) private {
        Order storage o = _orders[orderId];
        Status status = _statusOf(o);
        if (status != Status.Held && status != Status.Delivered) revert InvalidStatus(orderId, status);
        uint256 remaining = o.remaining;
        if (msg.sender != o.payer) {
            uint256 releasableAt = status == Status.Delivered ? o.deadline : 0;
            if (releasableAt == 0 || block.timestamp < releasableAt) {
                revert ReleaseNotAllowed(orderId, msg.sender, releasableAt);
            }
            if (amount != remaining) revert MustSettleRemainder(orderId, amount, remaining);
        } else if (amount == 0 || amount > remaining) {
            revert AmountExceedsRemaining(orderId, amount, remaining);
        }

        uint256 left = remaining - amount;
        // forge-lint: disable-next-line(unsafe-typecast) left < remaining, which is a uint96
        o.remaining = uint96(left);
        if (left == 0) status = Status.Settled; // derived from remaining == 0, not stored
        emit Released(orderId, msg.sender, amount, left, status);
        _payout(orderId, o.payee, amount);
    }

    function _refund(bytes32 orderId, uint256 amount) private {
        Order storage o = _orders[orderId];
        Status status = _statusOf(o);
        if (status != Status.Held && status != Status.Delivered) revert InvalidStatus(orderId, status);
        uint256 remaining = o.remaining;
        if (msg.sender != o.payee) {
            uint256 expiresAt = status == Status.Held ? o.deadline : 0;
            if (expiresAt == 0 || block.timestamp <= expiresAt) {
                revert RefundNotAllowed(orderId, msg.sender, expiresAt);
            }
            if (amount != remaining) revert MustSettleRemainder(orderId, amount, remaining);
        } else if (amount == 0 || amount > remaining) {
            revert AmountExceedsRemaining(orderId, amount, remaining);
        }

        uint256 left = remaining - amount;
        // forge-lint: disable-next-line(unsafe-typecast) left < remaining, which is a uint96
        o.remaining = uint96(left);
        if (left == 0) status = Status.Settled; // derived from remaining == 0, not stored
        emit Refunded(orderId, msg.sender, amount, left, status);
        _payout(orderId, o.payer, amount);
    }

    function _settleFrozen(Order storage o, bytes32 orderId, uint256 toPayee, uint256 toPayer, bool byTimeout) private {
        o.remaining = 0; // settled: derived from remaining == 0, not stored
        emit Resolved(orderId, msg.sender, toPayee, toPayer, byTimeout, 0, Status.Settled);
        if (toPayee != 0) _payout(orderId, o.payee, toPayee);
        if (toPayer != 0) _payout(orderId, o.payer, toPayer);
    }

    /// @dev A refused transfer is credited instead of reverting. A caller cannot force a refusal by
    ///      starving the call of gas: the 1/64 of gas kept back is far below what the credit's SSTORE costs.
    function _payout(bytes32 orderId, address to, uint256 amount) private {
        if (!IERC20(token).trySafeTransfer(to, amount)) {
            credits[to] += amount;
            emit PayoutDeferred(orderId, to, amount);
        }
    }
}
