// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {HoldfastEscrow} from "../../contracts/HoldfastEscrow.sol";
import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {Test} from "../lib/Test.sol";
import {VM, Vm} from "../lib/Vm.sol";
import {MockUSDC} from "../mocks/MockUSDC.sol";

/// @title EscrowTestBase
/// @notice Deploys MockUSDC and a HoldfastEscrow for it, funds the actors, and offers helpers to lock orders
///         with default terms, sign EIP-2612 permits and EIP-3009 authorizations, and check orders and balances.
abstract contract EscrowTestBase is Test {
    // ------------------------------------------------------------------ constants

    /// @dev A realistic start time (Nov 2023), so "now - 1" and similar never underflow.
    uint256 internal constant START = 1_700_000_000;
    uint256 internal constant AMOUNT = 1000e6;
    uint256 internal constant FUNDS = 1_000_000e6;
    uint32 internal constant DISPUTE_WINDOW = 3 days;
    uint64 internal constant DELIVERY_PERIOD = 7 days;
    uint256 internal constant FREEZE_TIMEOUT = 30 days;

    bytes32 internal constant ORDER = keccak256("order-1");
    bytes32 internal constant ORDER_2 = keccak256("order-2");
    bytes32 internal constant ORDER_3 = keccak256("order-3");
    bytes32 internal constant EVIDENCE = keccak256("delivery evidence");
    bytes32 internal constant REASON = keccak256("not as described");

    bytes32 internal constant EIP712_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    bytes32 internal constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant CANCEL_AUTHORIZATION_TYPEHASH =
        keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");

    // ------------------------------------------------------------------ state

    MockUSDC internal usdc;
    HoldfastEscrow internal escrow;

    address internal payer;
    uint256 internal payerKey;
    address internal payee;
    uint256 internal payeeKey;
    address internal arbiter;
    uint256 internal arbiterKey;
    address internal stranger;
    uint256 internal strangerKey;
    address internal relayer;

    /// @dev Default delivery deadline of orders locked in a test: START + DELIVERY_PERIOD.
    uint64 internal deliverBy;

    /// @notice Order terms, to keep helper signatures short.
    struct Terms {
        bytes32 orderId;
        address payer;
        address payee;
        uint256 amount;
        address arbiter;
        uint64 deliverBy;
        uint32 disputeWindow;
    }

    function setUp() public virtual {
        VM.warp(START);
        (payer, payerKey) = makeAddrAndKey("payer");
        (payee, payeeKey) = makeAddrAndKey("payee");
        (arbiter, arbiterKey) = makeAddrAndKey("arbiter");
        (stranger, strangerKey) = makeAddrAndKey("stranger");
        relayer = makeAddr("relayer");

        usdc = new MockUSDC();
        label(address(usdc), "MockUSDC");
        escrow = new HoldfastEscrow(address(usdc));
        label(address(escrow), "HoldfastEscrow");

        // forge-lint: disable-next-line(unsafe-typecast)
        deliverBy = uint64(START + DELIVERY_PERIOD);

        usdc.mint(payer, FUNDS);
        usdc.mint(stranger, FUNDS);
        VM.prank(payer);
        usdc.approve(address(escrow), type(uint256).max);
        VM.prank(stranger);
        usdc.approve(address(escrow), type(uint256).max);
    }

    // ------------------------------------------------------------------ terms

    function _terms(bytes32 orderId) internal view returns (Terms memory t) {
        t = Terms({
            orderId: orderId,
            payer: payer,
            payee: payee,
            amount: AMOUNT,
            arbiter: arbiter,
            deliverBy: deliverBy,
            disputeWindow: DISPUTE_WINDOW
        });
    }

    // ------------------------------------------------------------------ lock helpers

    /// @dev Lock `orderId` with the default terms (payer → payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW).
    function _lock(bytes32 orderId) internal {
        _lock(_terms(orderId));
    }

    /// @dev Lock `orderId` with the default terms but no arbiter.
    function _lockNoArbiter(bytes32 orderId) internal {
        Terms memory t = _terms(orderId);
        t.arbiter = address(0);
        _lock(t);
    }

    /// @dev Lock `t` from `t.payer` (who must hold and have approved the amount).
    function _lock(Terms memory t) internal {
        VM.prank(t.payer);
        escrow.lock(t.orderId, t.payee, t.amount, t.arbiter, t.deliverBy, t.disputeWindow);
    }

    /// @dev Mint `amount` of a mock `token` to `from` and approve `spender` for everything (weird-token escrows).
    function _fundAndApprove(address token, address from, address spender, uint256 amount) internal {
        (bool ok,) = token.call(abi.encodeWithSignature("mint(address,uint256)", from, amount));
        assertTrue(ok, "mint");
        VM.prank(from);
        (ok,) = token.call(abi.encodeWithSignature("approve(address,uint256)", spender, type(uint256).max));
        assertTrue(ok, "approve");
    }

    // ------------------------------------------------------------------ lifecycle helpers

    function _deliver(bytes32 orderId) internal {
        VM.prank(payee);
        escrow.deliver(orderId, EVIDENCE);
    }

    /// @dev Lock and deliver `orderId` now; returns releasableAt.
    function _lockAndDeliver(bytes32 orderId) internal returns (uint256 releasableAt) {
        _lock(orderId);
        _deliver(orderId);
        releasableAt = block.timestamp + DISPUTE_WINDOW;
    }

    function _freeze(bytes32 orderId, address by) internal returns (uint256 timeoutAt) {
        VM.prank(by);
        escrow.freeze(orderId, REASON);
        timeoutAt = block.timestamp + FREEZE_TIMEOUT;
    }

    /// @dev The latest deliverBy that lock accepts with `disputeWindow`: releasableAt and the freeze timeout
    ///      (deliverBy + disputeWindow + FREEZE_TIMEOUT at the latest) must fit the uint40 deadline field.
    function _maxDeliverBy(uint32 disputeWindow) internal pure returns (uint64) {
        // forge-lint: disable-next-line(unsafe-typecast) below 2^40
        return uint64(type(uint40).max - uint256(disputeWindow) - FREEZE_TIMEOUT);
    }

    // ------------------------------------------------------------------ order views

    function _order(bytes32 orderId) internal view returns (IHoldfastEscrow.Order memory order) {
        (order,) = escrow.getOrder(orderId);
    }

    function _status(bytes32 orderId) internal view returns (IHoldfastEscrow.Status) {
        return _order(orderId).status;
    }

    function _remaining(bytes32 orderId) internal view returns (uint256) {
        return _order(orderId).remaining;
    }

    function _assertStatus(bytes32 orderId, IHoldfastEscrow.Status expected) internal view {
        assertEq(uint256(_status(orderId)), uint256(expected), "order status");
    }

    function _assertOrder(
        bytes32 orderId,
        address payer_,
        address payee_,
        uint256 remaining,
        uint256 deadline,
        uint32 disputeWindow,
        IHoldfastEscrow.Status status,
        bool delivered,
        address arbiter_
    ) internal view {
        (IHoldfastEscrow.Order memory o, address a) = escrow.getOrder(orderId);
        assertEq(o.payer, payer_, "order.payer");
        assertEq(o.payee, payee_, "order.payee");
        assertEq(o.remaining, remaining, "order.remaining");
        assertEq(o.deadline, deadline, "order.deadline");
        assertEq(o.disputeWindow, disputeWindow, "order.disputeWindow");
        assertEq(uint256(o.status), uint256(status), "order.status");
        assertEq(o.delivered, delivered, "order.delivered");
        assertEq(o.hasArbiter, arbiter_ != address(0), "order.hasArbiter");
        assertEq(a, arbiter_, "arbiter");
    }

    /// @dev The whole stored order as one hash, to prove that a failed call changed nothing.
    function _orderHash(bytes32 orderId) internal view returns (bytes32) {
        (IHoldfastEscrow.Order memory o, address a) = escrow.getOrder(orderId);
        return keccak256(abi.encode(o, a));
    }

    // ------------------------------------------------------------------ signatures

    /// @dev USDC's EIP-712 domain separator for `token` on this chain: ("USD Coin", "2", chainid, token).
    function _domainSeparator(address token) internal view returns (bytes32) {
        return
            keccak256(abi.encode(EIP712_DOMAIN_TYPEHASH, keccak256("USD Coin"), keccak256("2"), block.chainid, token));
    }

    function _digest(address token, bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", _domainSeparator(token), structHash));
    }

    /// @dev EIP-2612 permit of `value` from the owner of `key` to `spender` on MockUSDC.
    function _signPermit(uint256 key, address spender, uint256 value, uint256 nonce, uint256 deadline)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        bytes32 structHash = keccak256(abi.encode(PERMIT_TYPEHASH, VM.addr(key), spender, value, nonce, deadline));
        (v, r, s) = VM.sign(key, _digest(address(usdc), structHash));
    }

    /// @dev EIP-3009 authorization of type `typeHash` (Receive/TransferWithAuthorization) on MockUSDC.
    function _signAuthorization(
        bytes32 typeHash,
        uint256 key,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        bytes32 structHash = keccak256(abi.encode(typeHash, VM.addr(key), to, value, validAfter, validBefore, nonce));
        (v, r, s) = VM.sign(key, _digest(address(usdc), structHash));
    }

    /// @dev The ReceiveWithAuthorization a payer signs to lock `t` on the escrow (nonce from the escrow).
    function _signLock(uint256 key, Terms memory t, uint256 validAfter, uint256 validBefore)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        bytes32 nonce = escrow.authorizationNonce(t.orderId, t.payee, t.amount, t.arbiter, t.deliverBy, t.disputeWindow);
        return _signAuthorization(
            RECEIVE_WITH_AUTHORIZATION_TYPEHASH, key, address(escrow), t.amount, validAfter, validBefore, nonce
        );
    }

    /// @dev Relay `t` via lockWithAuthorization from `relayer`.
    function _relayLock(Terms memory t, uint256 validAfter, uint256 validBefore, uint8 v, bytes32 r, bytes32 s)
        internal
    {
        VM.prank(relayer);
        escrow.lockWithAuthorization(
            t.payer,
            t.orderId,
            t.payee,
            t.amount,
            t.arbiter,
            t.deliverBy,
            t.disputeWindow,
            validAfter,
            validBefore,
            v,
            r,
            s
        );
    }

    // ------------------------------------------------------------------ logs

    /// @dev How many logs recorded since VM.recordLogs() have `topic0` and were emitted by `emitter`.
    function _countLogs(address emitter, bytes32 topic0) internal returns (uint256 n) {
        Vm.Log[] memory logs = VM.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == emitter && logs[i].topics.length != 0 && logs[i].topics[0] == topic0) ++n;
        }
    }
}
