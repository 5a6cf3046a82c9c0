// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";

contract ResolveByTimeoutTest is EscrowTestBase {
    uint256 internal payerAfterLocks;

    function setUp() public override {
        super.setUp();
        _lock(ORDER); // frozen undelivered
        _lock(ORDER_2); // frozen delivered
        payerAfterLocks = usdc.balanceOf(payer);
    }

    function _freezeHeld() private returns (uint256 timeoutAt) {
        timeoutAt = _freeze(ORDER, payee);
    }

    function _freezeDelivered() private returns (uint256 timeoutAt) {
        VM.prank(payee);
        escrow.deliver(ORDER_2, EVIDENCE);
        timeoutAt = _freeze(ORDER_2, payer);
    }

    // ------------------------------------------------------------------ default outcomes

    function test_resolveByTimeout_undeliveredRefundsPayerExactlyAtTimeout() public {
        uint256 timeoutAt = _freezeHeld();
        VM.warp(timeoutAt);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Resolved(ORDER, stranger, 0, AMOUNT, true, 0, IHoldfastEscrow.Status.Settled);
        VM.prank(stranger);
        escrow.resolveByTimeout(ORDER);
        _assertOrder(ORDER, payer, payee, 0, timeoutAt, DISPUTE_WINDOW, IHoldfastEscrow.Status.Settled, false, arbiter);
        assertEq(usdc.balanceOf(payer), payerAfterLocks + AMOUNT, "payer balance");
        assertEq(usdc.balanceOf(payee), 0, "payee balance");
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT, "escrow keeps order 2");
    }

    function test_resolveByTimeout_deliveredReleasesToPayeeExactlyAtTimeout() public {
        uint256 timeoutAt = _freezeDelivered();
        VM.warp(timeoutAt);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Resolved(ORDER_2, stranger, AMOUNT, 0, true, 0, IHoldfastEscrow.Status.Settled);
        VM.prank(stranger);
        escrow.resolveByTimeout(ORDER_2);
        _assertOrder(ORDER_2, payer, payee, 0, timeoutAt, DISPUTE_WINDOW, IHoldfastEscrow.Status.Settled, true, arbiter);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee balance");
        assertEq(usdc.balanceOf(payer), payerAfterLocks, "payer balance");
    }

    function test_resolveByTimeout_revertsOneSecondBeforeTimeout() public {
        uint256 timeoutAt = _freezeHeld();
        VM.warp(timeoutAt - 1);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.ArbiterTimeoutNotReached.selector, ORDER, timeoutAt));
        escrow.resolveByTimeout(ORDER);
    }

    function test_resolveByTimeout_revertsRightAfterFreeze() public {
        uint256 timeoutAt = _freezeDelivered();
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.ArbiterTimeoutNotReached.selector, ORDER_2, timeoutAt));
        VM.prank(payee);
        escrow.resolveByTimeout(ORDER_2);
    }

    function test_resolveByTimeout_timeoutIsThirtyDaysAfterFreezeNotAfterDeadline() public {
        VM.warp(START + 2 days);
        uint256 timeoutAt = _freezeHeld();
        assertEq(timeoutAt, START + 2 days + 30 days, "timeoutAt");
        assertEq(_order(ORDER).deadline, timeoutAt, "stored deadline");
    }

    function test_resolveByTimeout_settlesRemainderAfterPartialPayments() public {
        VM.prank(payer);
        escrow.release(ORDER_2, 100e6);
        uint256 timeoutAt = _freezeDelivered();
        VM.warp(timeoutAt);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Resolved(ORDER_2, payer, AMOUNT - 100e6, 0, true, 0, IHoldfastEscrow.Status.Settled);
        VM.prank(payer);
        escrow.resolveByTimeout(ORDER_2);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee balance");
    }

    function test_resolveByTimeout_payerCannotFreezeBeforeDeliverySoCannotForceARefund() public {
        // The rule this replaces let the payer freeze a Held order: that blocked delivery, and if the arbiter
        // never acted the timeout refunded the payer although the payee was still within deliverBy. Now the
        // payer's freeze of an undelivered order reverts, the payee delivers, and the default is a release.
        bytes32 before = _orderHash(ORDER);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NotPayee.selector, ORDER, payer, payee));
        VM.prank(payer);
        escrow.freeze(ORDER, REASON);
        assertEq(_orderHash(ORDER), before, "order unchanged");

        VM.warp(START + 1 days);
        _deliver(ORDER);
        // Once delivered, the payer may freeze (within the dispute window); the default outcome is a release.
        uint256 timeoutAt = _freeze(ORDER, payer);
        VM.warp(timeoutAt);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Resolved(ORDER, stranger, AMOUNT, 0, true, 0, IHoldfastEscrow.Status.Settled);
        VM.prank(stranger);
        escrow.resolveByTimeout(ORDER);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee paid");
        assertEq(usdc.balanceOf(payer), payerAfterLocks, "payer not refunded");
    }

    function test_resolveByTimeout_payeeFreezeBeforeDeliveryRefundsPayer() public {
        // The payee may freeze an undelivered order (for example, the terms turned out to be wrong); it then
        // cannot deliver any more, and if the arbiter never acts the timeout refunds the payer, as the expiry
        // would have.
        uint256 timeoutAt = _freeze(ORDER, payee);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, IHoldfastEscrow.Status.Frozen)
        );
        _deliver(ORDER);
        VM.warp(timeoutAt);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Resolved(ORDER, stranger, 0, AMOUNT, true, 0, IHoldfastEscrow.Status.Settled);
        VM.prank(stranger);
        escrow.resolveByTimeout(ORDER);
        _assertOrder(ORDER, payer, payee, 0, timeoutAt, DISPUTE_WINDOW, IHoldfastEscrow.Status.Settled, false, arbiter);
        assertEq(usdc.balanceOf(payer), payerAfterLocks + AMOUNT, "payer refunded");
        assertEq(usdc.balanceOf(payee), 0, "payee gets nothing");
    }

    function test_resolveByTimeout_payerFreezeOfDeliveredOrderReleasesToPayee() public {
        // The payer's freeze of a delivered order cannot turn into a refund by stalling either.
        uint256 timeoutAt = _freezeDelivered();
        VM.warp(timeoutAt);
        VM.prank(payer);
        escrow.resolveByTimeout(ORDER_2);
        _assertOrder(ORDER_2, payer, payee, 0, timeoutAt, DISPUTE_WINDOW, IHoldfastEscrow.Status.Settled, true, arbiter);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee paid");
        assertEq(usdc.balanceOf(payer), payerAfterLocks, "payer not refunded");
    }

    function test_resolveByTimeout_payeeFreezeOfDeliveredOrderReleasesToPayee() public {
        VM.prank(payee);
        escrow.deliver(ORDER_2, EVIDENCE);
        uint256 timeoutAt = _freeze(ORDER_2, payee);
        VM.warp(timeoutAt);
        escrow.resolveByTimeout(ORDER_2);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee paid");
        assertEq(usdc.balanceOf(payer), payerAfterLocks, "payer not refunded");
    }

    function test_resolveByTimeout_arbiterMayExecuteTheDefault() public {
        uint256 timeoutAt = _freezeDelivered();
        VM.warp(timeoutAt);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Resolved(ORDER_2, arbiter, AMOUNT, 0, true, 0, IHoldfastEscrow.Status.Settled);
        VM.prank(arbiter);
        escrow.resolveByTimeout(ORDER_2);
    }

    // ------------------------------------------------------------------ status

    function test_resolveByTimeout_revertsForUnknownOrder() public {
        _expectInvalidStatus(ORDER_3, IHoldfastEscrow.Status.None);
    }

    function test_resolveByTimeout_revertsWhenHeld() public {
        VM.warp(START + 365 days);
        _expectInvalidStatus(ORDER, IHoldfastEscrow.Status.Held);
    }

    function test_resolveByTimeout_revertsWhenDelivered() public {
        _deliver(ORDER);
        VM.warp(START + 365 days);
        _expectInvalidStatus(ORDER, IHoldfastEscrow.Status.Delivered);
    }

    function test_resolveByTimeout_revertsAfterArbiterResolved() public {
        uint256 timeoutAt = _freezeHeld();
        VM.prank(arbiter);
        escrow.resolve(ORDER, AMOUNT);
        VM.warp(timeoutAt);
        _expectInvalidStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(usdc.balanceOf(payee), AMOUNT, "arbiter's outcome stands");
    }

    function test_resolveByTimeout_revertsWhenCalledTwice() public {
        uint256 timeoutAt = _freezeHeld();
        VM.warp(timeoutAt);
        escrow.resolveByTimeout(ORDER);
        _expectInvalidStatus(ORDER, IHoldfastEscrow.Status.Settled);
    }

    function _expectInvalidStatus(bytes32 orderId, IHoldfastEscrow.Status status) private {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, orderId, status));
        VM.prank(stranger);
        escrow.resolveByTimeout(orderId);
    }

    // ------------------------------------------------------------------ refused payouts

    function test_resolveByTimeout_creditsBlacklistedPayee() public {
        uint256 timeoutAt = _freezeDelivered();
        usdc.blacklist(payee);
        VM.warp(timeoutAt);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.PayoutDeferred(ORDER_2, payee, AMOUNT);
        escrow.resolveByTimeout(ORDER_2);
        assertEq(escrow.credits(payee), AMOUNT, "payee credit");
        _assertStatus(ORDER_2, IHoldfastEscrow.Status.Settled);
    }

    function test_resolveByTimeout_creditsBlacklistedPayer() public {
        uint256 timeoutAt = _freezeHeld();
        usdc.blacklist(payer);
        VM.warp(timeoutAt);
        escrow.resolveByTimeout(ORDER);
        assertEq(escrow.credits(payer), AMOUNT, "payer credit");
        assertEq(usdc.balanceOf(payer), payerAfterLocks, "payer balance");
    }

    // ------------------------------------------------------------------ fuzz

    function testFuzz_resolveByTimeout_anyoneAnyTimeFromTimeout(address caller, uint256 when, bool delivered) public {
        VM.assume(caller != address(escrow));
        bytes32 orderId = delivered ? ORDER_2 : ORDER;
        uint256 timeoutAt = delivered ? _freezeDelivered() : _freezeHeld();
        VM.warp(bound(when, timeoutAt, timeoutAt + 3650 days));
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Resolved(
            orderId, caller, delivered ? AMOUNT : 0, delivered ? 0 : AMOUNT, true, 0, IHoldfastEscrow.Status.Settled
        );
        VM.prank(caller);
        escrow.resolveByTimeout(orderId);
        assertEq(usdc.balanceOf(payee), delivered ? AMOUNT : 0, "payee balance");
        assertEq(usdc.balanceOf(payer), payerAfterLocks + (delivered ? 0 : AMOUNT), "payer balance");
    }

    function testFuzz_resolveByTimeout_revertsBeforeTimeout(uint256 when) public {
        uint256 timeoutAt = _freezeHeld();
        VM.warp(bound(when, START, timeoutAt - 1));
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.ArbiterTimeoutNotReached.selector, ORDER, timeoutAt));
        escrow.resolveByTimeout(ORDER);
    }
}
