// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";

contract RefundTest is EscrowTestBase {
    uint256 internal payerAfterLock;

    function setUp() public override {
        super.setUp();
        _lock(ORDER);
        payerAfterLock = usdc.balanceOf(payer);
    }

    // ------------------------------------------------------------------ payee

    function test_refund_payeeRefundsWholeRemainderWhileHeld() public {
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Refunded(ORDER, payee, AMOUNT, 0, IHoldfastEscrow.Status.Settled);
        VM.prank(payee);
        escrow.refund(ORDER, AMOUNT);
        _assertOrder(ORDER, payer, payee, 0, deliverBy, DISPUTE_WINDOW, IHoldfastEscrow.Status.Settled, false, arbiter);
        assertEq(usdc.balanceOf(payer), payerAfterLock + AMOUNT, "payer balance");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow balance");
        assertEq(usdc.balanceOf(payee), 0, "payee balance");
    }

    function test_refund_payeeRefundsPartWhileHeld() public {
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Refunded(ORDER, payee, 250e6, AMOUNT - 250e6, IHoldfastEscrow.Status.Held);
        VM.prank(payee);
        escrow.refund(ORDER, 250e6);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Held);
        assertEq(_remaining(ORDER), AMOUNT - 250e6, "remaining");
        assertEq(usdc.balanceOf(payer), payerAfterLock + 250e6, "payer balance");
    }

    function test_refund_payeeRefundsPartWhileDelivered() public {
        _deliver(ORDER);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Refunded(ORDER, payee, 1, AMOUNT - 1, IHoldfastEscrow.Status.Delivered);
        VM.prank(payee);
        escrow.refund(ORDER, 1);
        _assertOrder(
            ORDER,
            payer,
            payee,
            AMOUNT - 1,
            START + DISPUTE_WINDOW,
            DISPUTE_WINDOW,
            IHoldfastEscrow.Status.Delivered,
            true,
            arbiter
        );
    }

    function test_refund_payeeRefundsWholeRemainderAfterReleasableAt() public {
        _deliver(ORDER);
        VM.warp(START + DISPUTE_WINDOW + 1);
        VM.prank(payee);
        escrow.refund(ORDER, AMOUNT);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(usdc.balanceOf(payer), payerAfterLock + AMOUNT, "payer balance");
    }

    function test_refund_payeeRefundsPartAfterDeliverBy() public {
        VM.warp(uint256(deliverBy) + 1);
        VM.prank(payee);
        escrow.refund(ORDER, 10);
        assertEq(_remaining(ORDER), AMOUNT - 10, "remaining");
        _assertStatus(ORDER, IHoldfastEscrow.Status.Held);
    }

    function test_refund_payeeRefundsInSeveralPartsUntilSettled() public {
        VM.startPrank(payee);
        escrow.refund(ORDER, 1);
        escrow.refund(ORDER, AMOUNT - 2);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Refunded(ORDER, payee, 1, 0, IHoldfastEscrow.Status.Settled);
        escrow.refund(ORDER, 1);
        VM.stopPrank();
        assertEq(usdc.balanceOf(payer), payerAfterLock + AMOUNT, "payer balance");
    }

    function test_refund_payeeRevertsForZeroAmount() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.AmountExceedsRemaining.selector, ORDER, 0, AMOUNT));
        VM.prank(payee);
        escrow.refund(ORDER, 0);
    }

    function test_refund_payeeRevertsAboveRemaining() public {
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.AmountExceedsRemaining.selector, ORDER, AMOUNT + 1, AMOUNT)
        );
        VM.prank(payee);
        escrow.refund(ORDER, AMOUNT + 1);
    }

    function test_refund_payeeRevertsAboveRemainingAfterPartialRelease() public {
        VM.prank(payer);
        escrow.release(ORDER, AMOUNT - 5);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.AmountExceedsRemaining.selector, ORDER, 6, 5));
        VM.prank(payee);
        escrow.refund(ORDER, 6);
    }

    // ------------------------------------------------------------------ expiry refund (anyone else)

    function test_refund_anyoneRefundsOneSecondAfterDeliverBy() public {
        VM.warp(uint256(deliverBy) + 1);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Refunded(ORDER, stranger, AMOUNT, 0, IHoldfastEscrow.Status.Settled);
        VM.prank(stranger);
        escrow.refund(ORDER, AMOUNT);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(usdc.balanceOf(payer), payerAfterLock + AMOUNT, "payer balance");
        assertEq(usdc.balanceOf(stranger), FUNDS, "stranger gets nothing");
    }

    function test_refund_anyoneRevertsExactlyAtDeliverBy() public {
        VM.warp(deliverBy);
        _expectRefundNotAllowed(stranger, deliverBy);
    }

    function test_refund_payerRefundsOneSecondAfterDeliverBy() public {
        VM.warp(uint256(deliverBy) + 1);
        VM.prank(payer);
        escrow.refund(ORDER, AMOUNT);
        assertEq(usdc.balanceOf(payer), payerAfterLock + AMOUNT, "payer balance");
    }

    function test_refund_payerRevertsBeforeExpiry() public {
        _expectRefundNotAllowed(payer, deliverBy);
    }

    function test_refund_arbiterRevertsBeforeExpiry() public {
        _expectRefundNotAllowed(arbiter, deliverBy);
    }

    function test_refund_arbiterCanExecuteExpiryRefund() public {
        VM.warp(uint256(deliverBy) + 30 days);
        VM.prank(arbiter);
        escrow.refund(ORDER, AMOUNT);
        assertEq(usdc.balanceOf(payer), payerAfterLock + AMOUNT, "payer balance");
        assertEq(usdc.balanceOf(arbiter), 0, "arbiter balance");
    }

    function test_refund_deliveredOrderNeverExpires() public {
        _deliver(ORDER);
        VM.warp(uint256(deliverBy) + 3650 days);
        _expectRefundNotAllowed(stranger, 0);
        _expectRefundNotAllowed(payer, 0);
    }

    function test_refund_expiryRefundRevertsForPartialAmount() public {
        VM.warp(uint256(deliverBy) + 1);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.MustSettleRemainder.selector, ORDER, AMOUNT - 1, AMOUNT));
        VM.prank(stranger);
        escrow.refund(ORDER, AMOUNT - 1);
    }

    function test_refund_expiryRefundRevertsForZeroAmount() public {
        VM.warp(uint256(deliverBy) + 1);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.MustSettleRemainder.selector, ORDER, 0, AMOUNT));
        VM.prank(stranger);
        escrow.refund(ORDER, 0);
    }

    function test_refund_expiryRefundRevertsAboveRemaining() public {
        VM.warp(uint256(deliverBy) + 1);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.MustSettleRemainder.selector, ORDER, AMOUNT + 1, AMOUNT));
        VM.prank(stranger);
        escrow.refund(ORDER, AMOUNT + 1);
    }

    function test_refund_expiryRefundChecksTimeBeforeAmount() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.RefundNotAllowed.selector, ORDER, stranger, deliverBy));
        VM.prank(stranger);
        escrow.refund(ORDER, 1);
    }

    function test_refund_expiryRefundSettlesRemainderAfterPartialPayments() public {
        VM.prank(payer);
        escrow.release(ORDER, 100e6);
        VM.warp(uint256(deliverBy) + 1);
        VM.prank(stranger);
        escrow.refund(ORDER, AMOUNT - 100e6);
        assertEq(usdc.balanceOf(payee), 100e6, "payee balance");
        assertEq(usdc.balanceOf(payer), payerAfterLock + AMOUNT - 100e6, "payer balance");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow balance");
    }

    function _expectRefundNotAllowed(address caller, uint256 expiresAt) private {
        bytes32 before = _orderHash(ORDER);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.RefundNotAllowed.selector, ORDER, caller, expiresAt));
        VM.prank(caller);
        escrow.refund(ORDER, AMOUNT);
        assertEq(_orderHash(ORDER), before, "order unchanged");
    }

    // ------------------------------------------------------------------ status

    function test_refund_revertsForUnknownOrder() public {
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER_2, IHoldfastEscrow.Status.None)
        );
        VM.prank(payee);
        escrow.refund(ORDER_2, 1);
    }

    function test_refund_revertsWhenFrozen() public {
        _freeze(ORDER, payee);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, IHoldfastEscrow.Status.Frozen)
        );
        VM.prank(payee);
        escrow.refund(ORDER, AMOUNT);
    }

    function test_refund_revertsWhenFrozenEvenAfterDeliverBy() public {
        _freeze(ORDER, payee);
        VM.warp(uint256(deliverBy) + 1);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, IHoldfastEscrow.Status.Frozen)
        );
        VM.prank(stranger);
        escrow.refund(ORDER, AMOUNT);
    }

    function test_refund_revertsWhenSettled() public {
        VM.prank(payee);
        escrow.refund(ORDER, AMOUNT);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, IHoldfastEscrow.Status.Settled)
        );
        VM.prank(payee);
        escrow.refund(ORDER, 1);
    }

    // ------------------------------------------------------------------ refused payouts

    function test_refund_creditsBlacklistedPayer() public {
        usdc.blacklist(payer);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Refunded(ORDER, payee, AMOUNT, 0, IHoldfastEscrow.Status.Settled);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.PayoutDeferred(ORDER, payer, AMOUNT);
        VM.prank(payee);
        escrow.refund(ORDER, AMOUNT);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(escrow.credits(payer), AMOUNT, "credit");
        assertEq(usdc.balanceOf(payer), payerAfterLock, "payer balance");
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT, "escrow keeps the credit");
    }

    function test_refund_expiryRefundToBlacklistedPayerIsCredited() public {
        usdc.blacklist(payer);
        VM.warp(uint256(deliverBy) + 1);
        VM.prank(stranger);
        escrow.refund(ORDER, AMOUNT);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(escrow.credits(payer), AMOUNT, "credit");
    }

    // ------------------------------------------------------------------ fuzz

    function testFuzz_refund_payeeAnyAmountUpToRemaining(uint256 amount, bool delivered) public {
        amount = bound(amount, 1, AMOUNT);
        if (delivered) _deliver(ORDER);
        IHoldfastEscrow.Status expected = amount == AMOUNT
            ? IHoldfastEscrow.Status.Settled
            : (delivered ? IHoldfastEscrow.Status.Delivered : IHoldfastEscrow.Status.Held);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Refunded(ORDER, payee, amount, AMOUNT - amount, expected);
        VM.prank(payee);
        escrow.refund(ORDER, amount);
        assertEq(_remaining(ORDER), AMOUNT - amount, "remaining");
        _assertStatus(ORDER, expected);
        assertEq(usdc.balanceOf(payer), payerAfterLock + amount, "payer balance");
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT - amount, "escrow balance");
    }

    function testFuzz_refund_payeeRevertsAboveRemaining(uint256 amount) public {
        amount = bound(amount, AMOUNT + 1, type(uint256).max);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.AmountExceedsRemaining.selector, ORDER, amount, AMOUNT));
        VM.prank(payee);
        escrow.refund(ORDER, amount);
    }

    function testFuzz_refund_anyoneAfterDeliverBy(address caller, uint256 when) public {
        VM.assume(caller != payee && caller != address(escrow));
        VM.warp(bound(when, uint256(deliverBy) + 1, uint256(deliverBy) + 3650 days));
        uint256 before = usdc.balanceOf(payer);
        VM.prank(caller);
        escrow.refund(ORDER, AMOUNT);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(usdc.balanceOf(payer), before + AMOUNT, "payer balance");
    }

    function testFuzz_refund_anyoneRevertsUpToDeliverBy(address caller, uint256 when) public {
        VM.assume(caller != payee);
        VM.warp(bound(when, START, deliverBy));
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.RefundNotAllowed.selector, ORDER, caller, deliverBy));
        VM.prank(caller);
        escrow.refund(ORDER, AMOUNT);
    }

    function testFuzz_refund_anyoneRevertsForAnyAmountButRemainder(uint256 amount) public {
        VM.assume(amount != AMOUNT);
        VM.warp(uint256(deliverBy) + 1);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.MustSettleRemainder.selector, ORDER, amount, AMOUNT));
        VM.prank(stranger);
        escrow.refund(ORDER, amount);
    }
}
