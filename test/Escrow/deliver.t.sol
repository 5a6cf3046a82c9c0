// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";

contract DeliverTest is EscrowTestBase {
    function setUp() public override {
        super.setUp();
        _lock(ORDER);
    }

    // ------------------------------------------------------------------ success

    function test_deliver_marksDeliveredAndSetsReleasableAt() public {
        VM.warp(START + 1 days);
        _deliver(ORDER);
        _assertOrder(
            ORDER,
            payer,
            payee,
            AMOUNT,
            START + 1 days + DISPUTE_WINDOW,
            DISPUTE_WINDOW,
            IHoldfastEscrow.Status.Delivered,
            true,
            arbiter
        );
    }

    function test_deliver_emitsDelivered() public {
        VM.warp(START + 1 days);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Delivered(
            ORDER,
            EVIDENCE,
            // forge-lint: disable-next-line(unsafe-typecast)
            uint64(START + 1 days + DISPUTE_WINDOW),
            AMOUNT,
            IHoldfastEscrow.Status.Delivered
        );
        _deliver(ORDER);
    }

    function test_deliver_acceptsZeroEvidence() public {
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Delivered(
            ORDER,
            bytes32(0),
            // forge-lint: disable-next-line(unsafe-typecast)
            uint64(START + DISPUTE_WINDOW),
            AMOUNT,
            IHoldfastEscrow.Status.Delivered
        );
        VM.prank(payee);
        escrow.deliver(ORDER, bytes32(0));
        _assertStatus(ORDER, IHoldfastEscrow.Status.Delivered);
    }

    function test_deliver_movesNoFunds() public {
        _deliver(ORDER);
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT, "escrow balance");
        assertEq(usdc.balanceOf(payee), 0, "payee balance");
    }

    function test_deliver_succeedsExactlyAtDeliverBy() public {
        VM.warp(deliverBy);
        _deliver(ORDER);
        assertEq(_order(ORDER).deadline, uint256(deliverBy) + DISPUTE_WINDOW, "releasableAt");
        _assertStatus(ORDER, IHoldfastEscrow.Status.Delivered);
    }

    function test_deliver_revertsOneSecondAfterDeliverBy() public {
        VM.warp(uint256(deliverBy) + 1);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.DeliveryDeadlinePassed.selector, ORDER, deliverBy));
        _deliver(ORDER);
    }

    function test_deliver_withZeroDisputeWindowIsReleasableImmediately() public {
        Terms memory t = _terms(ORDER_2);
        t.disputeWindow = 0;
        _lock(t);
        VM.prank(payee);
        escrow.deliver(ORDER_2, EVIDENCE);
        assertEq(_order(ORDER_2).deadline, block.timestamp, "releasableAt == now");
        // anyone may release the remainder in the same second
        VM.prank(stranger);
        escrow.release(ORDER_2, AMOUNT);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee paid");
    }

    function test_deliver_afterPartialPaymentsKeepsRemaining() public {
        VM.prank(payer);
        escrow.release(ORDER, 100);
        VM.prank(payee);
        escrow.refund(ORDER, 50);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Delivered(
            ORDER,
            EVIDENCE,
            // forge-lint: disable-next-line(unsafe-typecast)
            uint64(START + DISPUTE_WINDOW),
            AMOUNT - 150,
            IHoldfastEscrow.Status.Delivered
        );
        _deliver(ORDER);
        assertEq(_remaining(ORDER), AMOUNT - 150, "remaining");
    }

    // ------------------------------------------------------------------ caller

    function test_deliver_revertsForPayer() public {
        _expectNotPayee(payer);
    }

    function test_deliver_revertsForArbiter() public {
        _expectNotPayee(arbiter);
    }

    function test_deliver_revertsForStranger() public {
        _expectNotPayee(stranger);
    }

    function testFuzz_deliver_revertsForAnyoneButPayee(address caller) public {
        VM.assume(caller != payee);
        _expectNotPayee(caller);
    }

    function _expectNotPayee(address caller) private {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NotPayee.selector, ORDER, caller, payee));
        VM.prank(caller);
        escrow.deliver(ORDER, EVIDENCE);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Held);
    }

    // ------------------------------------------------------------------ status

    function test_deliver_revertsForUnknownOrder() public {
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER_2, IHoldfastEscrow.Status.None)
        );
        VM.prank(payee);
        escrow.deliver(ORDER_2, EVIDENCE);
    }

    function test_deliver_revertsWhenAlreadyDelivered() public {
        _deliver(ORDER);
        _expectInvalidStatus(IHoldfastEscrow.Status.Delivered);
    }

    function test_deliver_revertsWhenFrozen() public {
        _freeze(ORDER, payee);
        _expectInvalidStatus(IHoldfastEscrow.Status.Frozen);
    }

    function test_deliver_revertsWhenSettled() public {
        VM.prank(payee);
        escrow.refund(ORDER, AMOUNT);
        _expectInvalidStatus(IHoldfastEscrow.Status.Settled);
    }

    function test_deliver_checksStatusBeforeCaller() public {
        _deliver(ORDER);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, IHoldfastEscrow.Status.Delivered)
        );
        VM.prank(stranger);
        escrow.deliver(ORDER, EVIDENCE);
    }

    function test_deliver_checksCallerBeforeDeadline() public {
        VM.warp(uint256(deliverBy) + 1);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NotPayee.selector, ORDER, stranger, payee));
        VM.prank(stranger);
        escrow.deliver(ORDER, EVIDENCE);
    }

    function _expectInvalidStatus(IHoldfastEscrow.Status status) private {
        bytes32 before = _orderHash(ORDER);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, status));
        VM.prank(payee);
        escrow.deliver(ORDER, EVIDENCE);
        assertEq(_orderHash(ORDER), before, "order unchanged");
    }

    // ------------------------------------------------------------------ fuzz

    function testFuzz_deliver_anyTimeUpToDeliverBy(uint256 when, uint32 disputeWindow, bytes32 evidence) public {
        when = bound(when, START, deliverBy);
        Terms memory t = _terms(ORDER_2);
        t.disputeWindow = disputeWindow;
        _lock(t);
        VM.warp(when);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Delivered(
            ORDER_2,
            evidence,
            // forge-lint: disable-next-line(unsafe-typecast)
            uint64(when + disputeWindow),
            AMOUNT,
            IHoldfastEscrow.Status.Delivered
        );
        VM.prank(payee);
        escrow.deliver(ORDER_2, evidence);
        _assertOrder(
            ORDER_2,
            payer,
            payee,
            AMOUNT,
            when + disputeWindow,
            disputeWindow,
            IHoldfastEscrow.Status.Delivered,
            true,
            arbiter
        );
    }

    function testFuzz_deliver_revertsAnyTimeAfterDeliverBy(uint256 when) public {
        when = bound(when, uint256(deliverBy) + 1, type(uint40).max);
        VM.warp(when);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.DeliveryDeadlinePassed.selector, ORDER, deliverBy));
        _deliver(ORDER);
    }
}
