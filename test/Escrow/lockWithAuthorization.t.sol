// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {HoldfastEscrow} from "../../contracts/HoldfastEscrow.sol";
import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {MockUSDC} from "../mocks/MockUSDC.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

contract LockWithAuthorizationTest is EscrowTestBase {
    uint256 internal validAfter;
    uint256 internal validBefore;

    function setUp() public override {
        super.setUp();
        // No allowance: lockWithAuthorization must not rely on approve/transferFrom.
        VM.prank(payer);
        usdc.approve(address(escrow), 0);
        validAfter = 0;
        validBefore = START + 1 hours;
    }

    function _sign(Terms memory t) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        return _signLock(payerKey, t, validAfter, validBefore);
    }

    function _nonce(Terms memory t) internal view returns (bytes32) {
        return escrow.authorizationNonce(t.orderId, t.payee, t.amount, t.arbiter, t.deliverBy, t.disputeWindow);
    }

    function _expectInvalidSignature(Terms memory relayed, uint8 v, bytes32 r, bytes32 s) internal {
        VM.expectRevert(abi.encodeWithSelector(MockUSDC.InvalidSignature.selector));
        _relayLock(relayed, validAfter, validBefore, v, r, s);
        _assertStatus(relayed.orderId, IHoldfastEscrow.Status.None);
        assertEq(usdc.balanceOf(payer), FUNDS, "payer balance");
    }

    // ------------------------------------------------------------------ success

    function test_lockWithAuthorization_relayerLocksForPayer() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Locked(
            ORDER, payer, payee, arbiter, AMOUNT, deliverBy, DISPUTE_WINDOW, IHoldfastEscrow.Status.Held
        );
        VM.expectEmit(address(usdc));
        emit MockUSDC.AuthorizationUsed(payer, _nonce(t));
        _relayLock(t, validAfter, validBefore, v, r, s);
        _assertOrder(
            ORDER, payer, payee, AMOUNT, deliverBy, DISPUTE_WINDOW, IHoldfastEscrow.Status.Held, false, arbiter
        );
        assertEq(usdc.balanceOf(payer), FUNDS - AMOUNT, "payer balance");
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT, "escrow balance");
        assertEq(usdc.balanceOf(relayer), 0, "relayer balance");
        assertTrue(usdc.authorizationState(payer, _nonce(t)), "authorization used");
    }

    function test_lockWithAuthorization_payerMaySubmitItself() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        VM.prank(payer);
        escrow.lockWithAuthorization(
            payer, ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW, validAfter, validBefore, v, r, s
        );
        assertEq(_order(ORDER).payer, payer, "payer");
    }

    function test_lockWithAuthorization_payeeMayRelay() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        VM.prank(payee);
        escrow.lockWithAuthorization(
            payer, ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW, validAfter, validBefore, v, r, s
        );
        assertEq(_order(ORDER).payer, payer, "payer is the signer, not the relayer");
        assertEq(usdc.balanceOf(payee), 0, "payee balance");
    }

    function test_lockWithAuthorization_withoutArbiter() public {
        Terms memory t = _terms(ORDER);
        t.arbiter = address(0);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        _relayLock(t, validAfter, validBefore, v, r, s);
        (, address a) = escrow.getOrder(ORDER);
        assertEq(a, address(0), "arbiter");
    }

    // ------------------------------------------------------------------ a relayer cannot alter any term

    function test_lockWithAuthorization_revertsWhenRelayerAltersPayee() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        t.payee = relayer;
        _expectInvalidSignature(t, v, r, s);
    }

    function test_lockWithAuthorization_revertsWhenRelayerAltersAmount() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        t.amount = AMOUNT - 1;
        _expectInvalidSignature(t, v, r, s);
    }

    function test_lockWithAuthorization_revertsWhenRelayerAltersArbiter() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        t.arbiter = relayer;
        _expectInvalidSignature(t, v, r, s);
    }

    function test_lockWithAuthorization_revertsWhenRelayerRemovesArbiter() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        t.arbiter = address(0);
        _expectInvalidSignature(t, v, r, s);
    }

    function test_lockWithAuthorization_revertsWhenRelayerAltersDeliverBy() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        t.deliverBy = deliverBy + 1;
        _expectInvalidSignature(t, v, r, s);
    }

    function test_lockWithAuthorization_revertsWhenRelayerAltersDisputeWindow() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        t.disputeWindow = 0;
        _expectInvalidSignature(t, v, r, s);
    }

    function test_lockWithAuthorization_revertsWhenRelayerAltersOrderId() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        t.orderId = ORDER_2;
        _expectInvalidSignature(t, v, r, s);
    }

    function test_lockWithAuthorization_revertsWhenRelayerNamesAnotherPayer() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        t.payer = stranger;
        VM.expectRevert(abi.encodeWithSelector(MockUSDC.InvalidSignature.selector));
        _relayLock(t, validAfter, validBefore, v, r, s);
        assertEq(usdc.balanceOf(stranger), FUNDS, "stranger balance");
    }

    function test_lockWithAuthorization_revertsWhenRelayerAltersValidity() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        VM.expectRevert(abi.encodeWithSelector(MockUSDC.InvalidSignature.selector));
        _relayLock(t, validAfter, validBefore + 1, v, r, s);
        VM.expectRevert(abi.encodeWithSelector(MockUSDC.InvalidSignature.selector));
        _relayLock(t, validAfter + 1, validBefore, v, r, s);
    }

    function testFuzz_lockWithAuthorization_anySingleAlteredTermFails(uint8 which, uint256 newValue) public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        which = uint8(bound(which, 0, 5));
        if (which == 0) {
            t.orderId = bytes32(bound(newValue, 1, type(uint256).max));
            VM.assume(t.orderId != ORDER);
        } else if (which == 1) {
            t.payee = address(uint160(bound(newValue, 1, type(uint160).max)));
            VM.assume(t.payee != payee && t.payee != payer && t.payee != arbiter && t.payee != address(escrow));
        } else if (which == 2) {
            t.amount = bound(newValue, 1, FUNDS);
            VM.assume(t.amount != AMOUNT);
        } else if (which == 3) {
            // forge-lint: disable-next-line(unsafe-typecast)
            t.arbiter = address(uint160(newValue));
            VM.assume(t.arbiter != arbiter && t.arbiter != payer && t.arbiter != payee && t.arbiter != address(escrow));
        } else if (which == 4) {
            t.deliverBy = uint64(bound(newValue, START + 1, _maxDeliverBy(t.disputeWindow)));
            VM.assume(t.deliverBy != deliverBy);
        } else {
            // forge-lint: disable-next-line(unsafe-typecast)
            t.disputeWindow = uint32(newValue);
            VM.assume(t.disputeWindow != DISPUTE_WINDOW);
        }
        _expectInvalidSignature(t, v, r, s);
    }

    // ------------------------------------------------------------------ replay, chain, escrow, cancel

    function test_lockWithAuthorization_replayRevertsWithOrderExists() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        _relayLock(t, validAfter, validBefore, v, r, s);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.OrderExists.selector, ORDER, IHoldfastEscrow.Status.Held)
        );
        _relayLock(t, validAfter, validBefore, v, r, s);
        assertEq(usdc.balanceOf(payer), FUNDS - AMOUNT, "charged once");
    }

    function test_lockWithAuthorization_replayAfterSettlementRevertsWithOrderExists() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        _relayLock(t, validAfter, validBefore, v, r, s);
        VM.prank(payee);
        escrow.refund(ORDER, AMOUNT);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.OrderExists.selector, ORDER, IHoldfastEscrow.Status.Settled)
        );
        _relayLock(t, validAfter, validBefore, v, r, s);
        assertEq(usdc.balanceOf(payer), FUNDS, "refunded, charged once");
    }

    function test_lockWithAuthorization_replayOnAnotherEscrowFails() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        HoldfastEscrow other = new HoldfastEscrow(address(usdc));
        VM.expectRevert(abi.encodeWithSelector(MockUSDC.InvalidSignature.selector));
        VM.prank(relayer);
        other.lockWithAuthorization(
            payer, ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW, validAfter, validBefore, v, r, s
        );
    }

    function test_lockWithAuthorization_signatureFromAnotherChainFails() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        bytes32 nonceHere = _nonce(t);
        VM.chainId(block.chainid + 1);
        assertNotEq(_nonce(t), nonceHere, "nonce depends on the chain id");
        _expectInvalidSignature(t, v, r, s);
    }

    function test_lockWithAuthorization_signatureForThisChainWorksAfterChainIdChange() public {
        VM.chainId(8453);
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        _relayLock(t, validAfter, validBefore, v, r, s);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Held);
    }

    function test_lockWithAuthorization_revertsWhenAuthorizationWasCanceled() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        bytes32 nonce = _nonce(t);
        (uint8 cv, bytes32 cr, bytes32 cs) = VM.sign(
            payerKey, _digest(address(usdc), keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, payer, nonce)))
        );
        usdc.cancelAuthorization(payer, nonce, cv, cr, cs);
        VM.expectRevert(abi.encodeWithSelector(MockUSDC.AuthorizationUsedOrCanceled.selector, payer, nonce));
        _relayLock(t, validAfter, validBefore, v, r, s);
    }

    function test_lockWithAuthorization_revertsBeforeValidAfter() public {
        validAfter = START;
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        VM.expectRevert(abi.encodeWithSelector(MockUSDC.AuthorizationNotYetValid.selector, START));
        _relayLock(t, validAfter, validBefore, v, r, s);
        VM.warp(START + 1);
        _relayLock(t, validAfter, validBefore, v, r, s);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Held);
    }

    function test_lockWithAuthorization_revertsAtValidBefore() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        VM.warp(validBefore);
        VM.expectRevert(abi.encodeWithSelector(MockUSDC.AuthorizationExpired.selector, validBefore));
        _relayLock(t, validAfter, validBefore, v, r, s);
    }

    function test_lockWithAuthorization_signatureCannotBeUsedOutsideTheEscrow() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        bytes32 nonce = _nonce(t);
        // receiveWithAuthorization only for the escrow itself ...
        VM.expectRevert(abi.encodeWithSelector(MockUSDC.CallerMustBePayee.selector, relayer, address(escrow)));
        VM.prank(relayer);
        usdc.receiveWithAuthorization(payer, address(escrow), AMOUNT, validAfter, validBefore, nonce, v, r, s);
        // ... and it is not a TransferWithAuthorization signature.
        VM.expectRevert(abi.encodeWithSelector(MockUSDC.InvalidSignature.selector));
        VM.prank(relayer);
        usdc.transferWithAuthorization(payer, address(escrow), AMOUNT, validAfter, validBefore, nonce, v, r, s);
        assertEq(usdc.balanceOf(payer), FUNDS, "payer balance");
    }

    function test_lockWithAuthorization_rejectsTransferWithAuthorizationSignature() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _signAuthorization(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH, payerKey, address(escrow), AMOUNT, validAfter, validBefore, _nonce(t)
        );
        _expectInvalidSignature(t, v, r, s);
    }

    function test_lockWithAuthorization_rejectsSignatureForAnotherRecipient() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _signAuthorization(
            RECEIVE_WITH_AUTHORIZATION_TYPEHASH, payerKey, relayer, AMOUNT, validAfter, validBefore, _nonce(t)
        );
        _expectInvalidSignature(t, v, r, s);
    }

    function test_lockWithAuthorization_orderIdCanBeSquattedByFrontRunner() public {
        // Documents a limitation: order ids are one global namespace, so anyone who sees a pending
        // authorization can take its order id first (with a 1-unit order of their own), and the payer's
        // signed authorization becomes unusable (its nonce binds the order id).
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        VM.prank(stranger);
        escrow.lock(ORDER, relayer, 1, address(0), deliverBy, 0);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.OrderExists.selector, ORDER, IHoldfastEscrow.Status.Held)
        );
        _relayLock(t, validAfter, validBefore, v, r, s);
        assertEq(usdc.balanceOf(payer), FUNDS, "payer not charged");
    }

    // ------------------------------------------------------------------ terms and token failures

    function test_lockWithAuthorization_validatesTermsFirst() public {
        Terms memory t = _terms(ORDER);
        t.arbiter = payee;
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidArbiter.selector, payee));
        _relayLock(t, validAfter, validBefore, v, r, s);
    }

    function test_lockWithAuthorization_revertsForEscrowAsPayee() public {
        Terms memory t = _terms(ORDER);
        t.payee = address(escrow);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidPayee.selector, address(escrow)));
        _relayLock(t, validAfter, validBefore, v, r, s);
        assertFalse(usdc.authorizationState(payer, _nonce(t)), "authorization unused");
        assertEq(usdc.balanceOf(payer), FUNDS, "payer not charged");
    }

    function test_lockWithAuthorization_revertsForDeliverByBeyondUint40Bound() public {
        Terms memory t = _terms(ORDER);
        t.deliverBy = _maxDeliverBy(t.disputeWindow) + 1;
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidDeliverBy.selector, t.deliverBy, START));
        _relayLock(t, validAfter, validBefore, v, r, s);
        assertFalse(usdc.authorizationState(payer, _nonce(t)), "authorization unused");
    }

    function test_lockWithAuthorization_revertsForZeroOrderId() public {
        Terms memory t = _terms(bytes32(0));
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.ZeroOrderId.selector));
        _relayLock(t, validAfter, validBefore, 27, bytes32(0), bytes32(0));
    }

    function test_lockWithAuthorization_revertsWhenPayerIsBlacklisted() public {
        Terms memory t = _terms(ORDER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        usdc.blacklist(payer);
        VM.expectRevert(abi.encodeWithSelector(MockUSDC.AccountBlacklisted.selector, payer));
        _relayLock(t, validAfter, validBefore, v, r, s);
    }

    function test_lockWithAuthorization_revertsWhenBalanceIsShort() public {
        Terms memory t = _terms(ORDER);
        t.amount = FUNDS + 1;
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        VM.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, payer, FUNDS, FUNDS + 1));
        _relayLock(t, validAfter, validBefore, v, r, s);
    }

    // ------------------------------------------------------------------ fuzz

    function testFuzz_lockWithAuthorization_anyRelayerAnyAmount(address relayer_, uint256 amount, uint32 window)
        public
    {
        VM.assume(relayer_ != address(0) && relayer_ != address(usdc));
        amount = bound(amount, 1, type(uint96).max);
        usdc.mint(payer, amount);
        Terms memory t = _terms(ORDER);
        t.amount = amount;
        t.disputeWindow = window;
        (uint8 v, bytes32 r, bytes32 s) = _sign(t);
        VM.prank(relayer_);
        escrow.lockWithAuthorization(
            payer, ORDER, payee, amount, arbiter, deliverBy, window, validAfter, validBefore, v, r, s
        );
        _assertOrder(ORDER, payer, payee, amount, deliverBy, window, IHoldfastEscrow.Status.Held, false, arbiter);
        assertEq(usdc.balanceOf(address(escrow)), amount, "escrow balance");
        assertEq(usdc.balanceOf(payer), FUNDS, "payer balance");
    }
}
