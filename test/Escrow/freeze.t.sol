// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";

contract FreezeTest is EscrowTestBase {
    function setUp() public override {
        super.setUp();
        _lock(ORDER);
    }

    // ------------------------------------------------------------------ success

    function test_freeze_payeeFreezesHeldOrderLater() public {
        VM.warp(START + 1 days);
        uint256 timeoutAt = START + 1 days + 30 days;
        VM.expectEmit(address(escrow));
        // forge-lint: disable-next-line(unsafe-typecast)
        emit IHoldfastEscrow.Frozen(ORDER, payee, REASON, uint64(timeoutAt), AMOUNT, IHoldfastEscrow.Status.Frozen);
        VM.prank(payee);
        escrow.freeze(ORDER, REASON);
        _assertOrder(
            ORDER, payer, payee, AMOUNT, timeoutAt, DISPUTE_WINDOW, IHoldfastEscrow.Status.Frozen, false, arbiter
        );
    }

    function test_freeze_payeeFreezesHeldOrder() public {
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Frozen(
            ORDER,
            payee,
            bytes32(0),
            // forge-lint: disable-next-line(unsafe-typecast)
            uint64(START + 30 days),
            AMOUNT,
            IHoldfastEscrow.Status.Frozen
        );
        VM.prank(payee);
        escrow.freeze(ORDER, bytes32(0));
        _assertStatus(ORDER, IHoldfastEscrow.Status.Frozen);
    }

    function test_freeze_payerFreezesDeliveredOrderAndKeepsDeliveredFlag() public {
        _deliver(ORDER);
        VM.warp(START + 1 hours);
        VM.prank(payer);
        escrow.freeze(ORDER, REASON);
        _assertOrder(
            ORDER,
            payer,
            payee,
            AMOUNT,
            START + 1 hours + 30 days,
            DISPUTE_WINDOW,
            IHoldfastEscrow.Status.Frozen,
            true,
            arbiter
        );
    }

    function test_freeze_payerMayFreezeOnceDelivered() public {
        VM.warp(START + 1 days);
        _expectNotPayee(payer);
        _deliver(ORDER);
        VM.prank(payer);
        escrow.freeze(ORDER, REASON);
        _assertOrder(
            ORDER,
            payer,
            payee,
            AMOUNT,
            START + 1 days + 30 days,
            DISPUTE_WINDOW,
            IHoldfastEscrow.Status.Frozen,
            true,
            arbiter
        );
    }

    function test_freeze_payeeFreezesDeliveredOrder() public {
        _deliver(ORDER);
        VM.prank(payee);
        escrow.freeze(ORDER, REASON);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Frozen);
        assertTrue(_order(ORDER).delivered, "delivered");
    }

    function test_freeze_movesNoFunds() public {
        _freeze(ORDER, payee);
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT, "escrow balance");
        assertEq(usdc.balanceOf(payee), 0, "payee balance");
        assertEq(usdc.balanceOf(payer), FUNDS - AMOUNT, "payer balance");
    }

    function test_freeze_afterPartialPaymentsFreezesTheRemainder() public {
        VM.prank(payer);
        escrow.release(ORDER, 300e6);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Frozen(
            ORDER,
            payee,
            REASON,
            // forge-lint: disable-next-line(unsafe-typecast)
            uint64(START + 30 days),
            AMOUNT - 300e6,
            IHoldfastEscrow.Status.Frozen
        );
        VM.prank(payee);
        escrow.freeze(ORDER, REASON);
    }

    function test_freeze_leavesOtherOrdersAlone() public {
        _lock(ORDER_2);
        bytes32 before = _orderHash(ORDER_2);
        _freeze(ORDER, payee);
        assertEq(_orderHash(ORDER_2), before, "other order");
        VM.prank(payer);
        escrow.release(ORDER_2, AMOUNT);
        assertEq(usdc.balanceOf(payee), AMOUNT, "other order still releasable");
    }

    // ------------------------------------------------------------------ freeze window

    function test_freeze_heldSucceedsExactlyAtDeliverBy() public {
        VM.warp(deliverBy);
        VM.prank(payee);
        escrow.freeze(ORDER, REASON);
        assertEq(_order(ORDER).deadline, uint256(deliverBy) + 30 days, "timeoutAt");
    }

    function test_freeze_heldRevertsOneSecondAfterDeliverBy() public {
        VM.warp(uint256(deliverBy) + 1);
        _expectWindowClosed(payee, deliverBy);
        _expectNotPayee(payer); // the payer may never freeze a Held order: NotPayee comes before the window
    }

    function test_freeze_deliveredSucceedsOneSecondBeforeReleasableAt() public {
        _deliver(ORDER);
        uint256 releasableAt = START + DISPUTE_WINDOW;
        VM.warp(releasableAt - 1);
        VM.prank(payer);
        escrow.freeze(ORDER, REASON);
        assertEq(_order(ORDER).deadline, releasableAt - 1 + 30 days, "timeoutAt");
    }

    function test_freeze_deliveredRevertsExactlyAtReleasableAt() public {
        _deliver(ORDER);
        uint256 releasableAt = START + DISPUTE_WINDOW;
        VM.warp(releasableAt);
        _expectWindowClosed(payer, releasableAt);
        _expectWindowClosed(payee, releasableAt);
    }

    function test_freeze_deliveredWithZeroDisputeWindowCannotBeFrozen() public {
        Terms memory t = _terms(ORDER_2);
        t.disputeWindow = 0;
        _lock(t);
        VM.prank(payee);
        escrow.deliver(ORDER_2, EVIDENCE);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.FreezeWindowClosed.selector, ORDER_2, START));
        VM.prank(payer);
        escrow.freeze(ORDER_2, REASON);
    }

    function test_freeze_deliveryAfterDeliverByWindowUsesReleasableAt() public {
        // Delivered at deliverBy: the freeze window now runs to deliverBy + disputeWindow, past deliverBy.
        VM.warp(deliverBy);
        _deliver(ORDER);
        VM.warp(uint256(deliverBy) + DISPUTE_WINDOW - 1);
        VM.prank(payer);
        escrow.freeze(ORDER, REASON);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Frozen);
    }

    function _expectWindowClosed(address caller, uint256 deadline) private {
        bytes32 before = _orderHash(ORDER);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.FreezeWindowClosed.selector, ORDER, deadline));
        VM.prank(caller);
        escrow.freeze(ORDER, REASON);
        assertEq(_orderHash(ORDER), before, "order unchanged");
    }

    // ------------------------------------------------------------------ caller and arbiter

    function test_freeze_revertsForArbiter() public {
        _expectNotParty(arbiter);
    }

    function test_freeze_revertsForStranger() public {
        _expectNotParty(stranger);
    }

    function testFuzz_freeze_revertsForAnyNonParty(address caller) public {
        VM.assume(caller != payer && caller != payee);
        _expectNotParty(caller);
    }

    function _expectNotParty(address caller) private {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NotParty.selector, ORDER, caller));
        VM.prank(caller);
        escrow.freeze(ORDER, REASON);
    }

    /// @dev Only the payee may freeze an undelivered order: a payer freeze would block delivery and, if the
    ///      arbiter never acts, turn into a refund by stalling. Before delivery the payer has the expiry.
    function test_freeze_revertsForPayerWhenHeld() public {
        VM.warp(START + 1 days);
        _expectNotPayee(payer);
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT, "escrow balance");
        // The payee can still deliver.
        _deliver(ORDER);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Delivered);
    }

    function test_freeze_revertsForPayerWhenHeldRightAfterLock() public {
        _expectNotPayee(payer);
    }

    function test_freeze_revertsForPayerWhenHeldExactlyAtDeliverBy() public {
        VM.warp(deliverBy);
        _expectNotPayee(payer);
    }

    function test_freeze_revertsForPayerWhenHeldAfterPartialPayments() public {
        VM.prank(payer);
        escrow.release(ORDER, 300e6);
        VM.prank(payee);
        escrow.refund(ORDER, 200e6);
        _expectNotPayee(payer);
        assertEq(_remaining(ORDER), AMOUNT - 500e6, "remaining");
    }

    function testFuzz_freeze_revertsForPayerAnyTimeWhileHeld(uint256 when, bytes32 reason) public {
        VM.warp(bound(when, START, uint256(deliverBy) + 3650 days));
        bytes32 before = _orderHash(ORDER);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NotPayee.selector, ORDER, payer, payee));
        VM.prank(payer);
        escrow.freeze(ORDER, reason);
        assertEq(_orderHash(ORDER), before, "order unchanged");
    }

    function _expectNotPayee(address caller) private {
        bytes32 before = _orderHash(ORDER);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NotPayee.selector, ORDER, caller, payee));
        VM.prank(caller);
        escrow.freeze(ORDER, REASON);
        assertEq(_orderHash(ORDER), before, "order unchanged");
    }

    function test_freeze_revertsWithoutArbiter() public {
        _lockNoArbiter(ORDER_2);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NoArbiter.selector, ORDER_2));
        VM.prank(payee);
        escrow.freeze(ORDER_2, REASON);
        // The payer may never freeze a Held order: NotPayee comes before the arbiter check.
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NotPayee.selector, ORDER_2, payer, payee));
        VM.prank(payer);
        escrow.freeze(ORDER_2, REASON);
        _assertStatus(ORDER_2, IHoldfastEscrow.Status.Held);
    }

    function test_freeze_revertsWithoutArbiterWhenDelivered() public {
        _lockNoArbiter(ORDER_2);
        VM.prank(payee);
        escrow.deliver(ORDER_2, EVIDENCE);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NoArbiter.selector, ORDER_2));
        VM.prank(payer);
        escrow.freeze(ORDER_2, REASON);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NoArbiter.selector, ORDER_2));
        VM.prank(payee);
        escrow.freeze(ORDER_2, REASON);
        _assertStatus(ORDER_2, IHoldfastEscrow.Status.Delivered);
    }

    // ------------------------------------------------------------------ status

    function test_freeze_revertsForUnknownOrder() public {
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER_2, IHoldfastEscrow.Status.None)
        );
        VM.prank(payer);
        escrow.freeze(ORDER_2, REASON);
    }

    function test_freeze_revertsWhenAlreadyFrozen() public {
        uint256 timeoutAt = _freeze(ORDER, payee);
        VM.warp(START + 1 days);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, IHoldfastEscrow.Status.Frozen)
        );
        VM.prank(payee);
        escrow.freeze(ORDER, REASON);
        assertEq(_order(ORDER).deadline, timeoutAt, "timeout not extended");
    }

    function test_freeze_revertsWhenAlreadyFrozenDelivered() public {
        _deliver(ORDER);
        uint256 timeoutAt = _freeze(ORDER, payer);
        VM.warp(START + 1 days);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, IHoldfastEscrow.Status.Frozen)
        );
        VM.prank(payer);
        escrow.freeze(ORDER, REASON);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, IHoldfastEscrow.Status.Frozen)
        );
        VM.prank(payee);
        escrow.freeze(ORDER, REASON);
        assertEq(_order(ORDER).deadline, timeoutAt, "timeout not extended");
    }

    function test_freeze_revertsWhenSettled() public {
        VM.prank(payer);
        escrow.release(ORDER, AMOUNT);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, IHoldfastEscrow.Status.Settled)
        );
        VM.prank(payer);
        escrow.freeze(ORDER, REASON);
    }

    // ------------------------------------------------------------------ check order

    function test_freeze_checksStatusBeforeCaller() public {
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER_2, IHoldfastEscrow.Status.None)
        );
        VM.prank(stranger);
        escrow.freeze(ORDER_2, REASON);
    }

    function test_freeze_checksCallerBeforeArbiter() public {
        _lockNoArbiter(ORDER_2);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NotParty.selector, ORDER_2, stranger));
        VM.prank(stranger);
        escrow.freeze(ORDER_2, REASON);
    }

    function test_freeze_checksArbiterBeforeWindow() public {
        _lockNoArbiter(ORDER_2);
        VM.warp(uint256(deliverBy) + 1);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NoArbiter.selector, ORDER_2));
        VM.prank(payee);
        escrow.freeze(ORDER_2, REASON);
    }

    function test_freeze_checksStatusBeforePayerRule() public {
        // A frozen order that was never delivered: the payer gets InvalidStatus, not NotPayee.
        _freeze(ORDER, payee);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, IHoldfastEscrow.Status.Frozen)
        );
        VM.prank(payer);
        escrow.freeze(ORDER, REASON);
    }

    function test_freeze_checksNotPartyBeforePayerRule() public {
        // A stranger on a Held order is not a party at all: NotParty, not NotPayee.
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NotParty.selector, ORDER, stranger));
        VM.prank(stranger);
        escrow.freeze(ORDER, REASON);
    }

    function test_freeze_checksPayerRuleBeforeArbiter() public {
        _lockNoArbiter(ORDER_2);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NotPayee.selector, ORDER_2, payer, payee));
        VM.prank(payer);
        escrow.freeze(ORDER_2, REASON);
    }

    function test_freeze_checksPayerRuleBeforeWindow() public {
        VM.warp(uint256(deliverBy) + 1);
        _expectNotPayee(payer);
    }

    // ------------------------------------------------------------------ fuzz

    function testFuzz_freeze_heldAnyTimeUpToDeliverByOnlyByPayee(uint256 when, bytes32 reason) public {
        when = bound(when, START, deliverBy);
        VM.warp(when);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NotPayee.selector, ORDER, payer, payee));
        VM.prank(payer);
        escrow.freeze(ORDER, reason);
        // forge-lint: disable-next-line(unsafe-typecast)
        uint64 timeoutAt = uint64(when + 30 days);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Frozen(ORDER, payee, reason, timeoutAt, AMOUNT, IHoldfastEscrow.Status.Frozen);
        VM.prank(payee);
        escrow.freeze(ORDER, reason);
        _assertOrder(
            ORDER, payer, payee, AMOUNT, when + 30 days, DISPUTE_WINDOW, IHoldfastEscrow.Status.Frozen, false, arbiter
        );
    }

    function testFuzz_freeze_heldRevertsAfterDeliverBy(uint256 when) public {
        VM.warp(bound(when, uint256(deliverBy) + 1, uint256(deliverBy) + 3650 days));
        _expectWindowClosed(payee, deliverBy);
    }

    function testFuzz_freeze_deliveredWindow(uint256 deliveredAt, uint256 when, uint32 disputeWindow, bool byPayee)
        public
    {
        Terms memory t = _terms(ORDER_2);
        t.disputeWindow = disputeWindow;
        _lock(t);
        deliveredAt = bound(deliveredAt, START, deliverBy);
        VM.warp(deliveredAt);
        VM.prank(payee);
        escrow.deliver(ORDER_2, EVIDENCE);
        uint256 releasableAt = deliveredAt + disputeWindow;
        when = bound(when, deliveredAt, releasableAt + 365 days);
        VM.warp(when);
        address by = byPayee ? payee : payer;
        if (when < releasableAt) {
            VM.prank(by);
            escrow.freeze(ORDER_2, REASON);
            assertEq(_order(ORDER_2).deadline, when + 30 days, "timeoutAt");
            _assertStatus(ORDER_2, IHoldfastEscrow.Status.Frozen);
        } else {
            VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.FreezeWindowClosed.selector, ORDER_2, releasableAt));
            VM.prank(by);
            escrow.freeze(ORDER_2, REASON);
        }
    }
}
