// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";

contract ResolveTest is EscrowTestBase {
    uint256 internal timeoutAt;
    uint256 internal payerAfterLock;

    function setUp() public override {
        super.setUp();
        _lock(ORDER);
        payerAfterLock = usdc.balanceOf(payer);
        timeoutAt = _freeze(ORDER, payee); // undelivered: only the payee may freeze it
    }

    // ------------------------------------------------------------------ success

    function test_resolve_arbiterSplitsBetweenPayeeAndPayer() public {
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Resolved(ORDER, arbiter, 600e6, 400e6, false, 0, IHoldfastEscrow.Status.Settled);
        VM.prank(arbiter);
        escrow.resolve(ORDER, 600e6);
        _assertOrder(ORDER, payer, payee, 0, timeoutAt, DISPUTE_WINDOW, IHoldfastEscrow.Status.Settled, false, arbiter);
        assertEq(usdc.balanceOf(payee), 600e6, "payee balance");
        assertEq(usdc.balanceOf(payer), payerAfterLock + 400e6, "payer balance");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow balance");
        assertEq(usdc.balanceOf(arbiter), 0, "arbiter balance");
    }

    function test_resolve_allToPayee() public {
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Resolved(ORDER, arbiter, AMOUNT, 0, false, 0, IHoldfastEscrow.Status.Settled);
        VM.prank(arbiter);
        escrow.resolve(ORDER, AMOUNT);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee balance");
        assertEq(usdc.balanceOf(payer), payerAfterLock, "payer balance");
    }

    function test_resolve_allToPayer() public {
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Resolved(ORDER, arbiter, 0, AMOUNT, false, 0, IHoldfastEscrow.Status.Settled);
        VM.prank(arbiter);
        escrow.resolve(ORDER, 0);
        assertEq(usdc.balanceOf(payee), 0, "payee balance");
        assertEq(usdc.balanceOf(payer), payerAfterLock + AMOUNT, "payer balance");
    }

    function test_resolve_deliveredOrderMayGoToPayer() public {
        _lock(ORDER_2);
        VM.prank(payee);
        escrow.deliver(ORDER_2, EVIDENCE);
        VM.prank(payee);
        escrow.freeze(ORDER_2, REASON);
        VM.prank(arbiter);
        escrow.resolve(ORDER_2, 0);
        _assertStatus(ORDER_2, IHoldfastEscrow.Status.Settled);
        assertEq(usdc.balanceOf(payer), payerAfterLock, "payer refunded order 2");
    }

    function test_resolve_splitsOnlyTheRemainder() public {
        _lock(ORDER_2);
        VM.prank(payer);
        escrow.release(ORDER_2, 100e6);
        VM.prank(payee);
        escrow.freeze(ORDER_2, REASON);
        uint256 left = AMOUNT - 100e6;
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.AmountExceedsRemaining.selector, ORDER_2, left + 1, left)
        );
        VM.prank(arbiter);
        escrow.resolve(ORDER_2, left + 1);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Resolved(ORDER_2, arbiter, 500e6, left - 500e6, false, 0, IHoldfastEscrow.Status.Settled);
        VM.prank(arbiter);
        escrow.resolve(ORDER_2, 500e6);
        assertEq(usdc.balanceOf(payee), 600e6, "payee balance");
    }

    function test_resolve_arbiterCanStillResolveAfterTimeout() public {
        VM.warp(timeoutAt + 10 days);
        VM.prank(arbiter);
        escrow.resolve(ORDER, 1);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(usdc.balanceOf(payee), 1, "payee balance");
        assertEq(usdc.balanceOf(payer), payerAfterLock + AMOUNT - 1, "payer balance");
    }

    // ------------------------------------------------------------------ reverts

    function test_resolve_revertsAboveRemaining() public {
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.AmountExceedsRemaining.selector, ORDER, AMOUNT + 1, AMOUNT)
        );
        VM.prank(arbiter);
        escrow.resolve(ORDER, AMOUNT + 1);
    }

    function testFuzz_resolve_revertsAboveRemaining(uint256 toPayee) public {
        toPayee = bound(toPayee, AMOUNT + 1, type(uint256).max);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.AmountExceedsRemaining.selector, ORDER, toPayee, AMOUNT));
        VM.prank(arbiter);
        escrow.resolve(ORDER, toPayee);
    }

    function test_resolve_revertsForPayer() public {
        _expectNotArbiter(payer);
    }

    function test_resolve_revertsForPayee() public {
        _expectNotArbiter(payee);
    }

    function test_resolve_revertsForStranger() public {
        _expectNotArbiter(stranger);
    }

    function testFuzz_resolve_revertsForAnyoneButArbiter(address caller) public {
        VM.assume(caller != arbiter);
        _expectNotArbiter(caller);
    }

    function _expectNotArbiter(address caller) private {
        bytes32 before = _orderHash(ORDER);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NotArbiter.selector, ORDER, caller, arbiter));
        VM.prank(caller);
        escrow.resolve(ORDER, 0);
        assertEq(_orderHash(ORDER), before, "order unchanged");
    }

    function test_resolve_revertsForUnknownOrder() public {
        _expectInvalidStatus(ORDER_2, IHoldfastEscrow.Status.None);
    }

    function test_resolve_revertsWhenHeld() public {
        _lock(ORDER_2);
        _expectInvalidStatus(ORDER_2, IHoldfastEscrow.Status.Held);
    }

    function test_resolve_revertsWhenDelivered() public {
        _lock(ORDER_2);
        VM.prank(payee);
        escrow.deliver(ORDER_2, EVIDENCE);
        _expectInvalidStatus(ORDER_2, IHoldfastEscrow.Status.Delivered);
    }

    function test_resolve_revertsWhenAlreadyResolved() public {
        VM.prank(arbiter);
        escrow.resolve(ORDER, 0);
        _expectInvalidStatus(ORDER, IHoldfastEscrow.Status.Settled);
    }

    function test_resolve_revertsAfterResolveByTimeout() public {
        VM.warp(timeoutAt);
        escrow.resolveByTimeout(ORDER);
        _expectInvalidStatus(ORDER, IHoldfastEscrow.Status.Settled);
    }

    function test_resolve_checksStatusBeforeCaller() public {
        _lock(ORDER_2);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER_2, IHoldfastEscrow.Status.Held)
        );
        VM.prank(stranger);
        escrow.resolve(ORDER_2, type(uint256).max);
    }

    function test_resolve_checksCallerBeforeAmount() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NotArbiter.selector, ORDER, stranger, arbiter));
        VM.prank(stranger);
        escrow.resolve(ORDER, type(uint256).max);
    }

    function _expectInvalidStatus(bytes32 orderId, IHoldfastEscrow.Status status) private {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, orderId, status));
        VM.prank(arbiter);
        escrow.resolve(orderId, 0);
    }

    // ------------------------------------------------------------------ refused payouts

    function test_resolve_blacklistedPayeeShareIsCreditedPayerIsPaid() public {
        usdc.blacklist(payee);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Resolved(ORDER, arbiter, 700e6, 300e6, false, 0, IHoldfastEscrow.Status.Settled);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.PayoutDeferred(ORDER, payee, 700e6);
        VM.prank(arbiter);
        escrow.resolve(ORDER, 700e6);
        assertEq(escrow.credits(payee), 700e6, "payee credit");
        assertEq(escrow.credits(payer), 0, "payer credit");
        assertEq(usdc.balanceOf(payer), payerAfterLock + 300e6, "payer paid");
        assertEq(usdc.balanceOf(address(escrow)), 700e6, "escrow keeps the credit");
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
    }

    function test_resolve_blacklistedPayerShareIsCreditedPayeeIsPaid() public {
        usdc.blacklist(payer);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.PayoutDeferred(ORDER, payer, 300e6);
        VM.prank(arbiter);
        escrow.resolve(ORDER, 700e6);
        assertEq(escrow.credits(payer), 300e6, "payer credit");
        assertEq(escrow.credits(payee), 0, "payee credit");
        assertEq(usdc.balanceOf(payee), 700e6, "payee paid");
        assertEq(usdc.balanceOf(address(escrow)), 300e6, "escrow keeps the credit");
    }

    function test_resolve_bothBlacklistedBothCredited() public {
        usdc.blacklist(payer);
        usdc.blacklist(payee);
        VM.prank(arbiter);
        escrow.resolve(ORDER, 1);
        assertEq(escrow.credits(payee), 1, "payee credit");
        assertEq(escrow.credits(payer), AMOUNT - 1, "payer credit");
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT, "escrow balance");
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
    }

    function test_resolve_zeroShareToBlacklistedPayeeIsNotAttempted() public {
        usdc.blacklist(payee);
        VM.recordLogs();
        VM.prank(arbiter);
        escrow.resolve(ORDER, 0);
        assertEq(_countLogs(address(escrow), IHoldfastEscrow.PayoutDeferred.selector), 0, "PayoutDeferred logs");
        assertEq(escrow.credits(payee), 0, "payee credit");
        assertEq(usdc.balanceOf(payer), payerAfterLock + AMOUNT, "payer paid");
    }

    // ------------------------------------------------------------------ fuzz

    function testFuzz_resolve_anySplit(uint256 toPayee, uint256 when) public {
        toPayee = bound(toPayee, 0, AMOUNT);
        VM.warp(bound(when, START, timeoutAt + 365 days));
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Resolved(
            ORDER, arbiter, toPayee, AMOUNT - toPayee, false, 0, IHoldfastEscrow.Status.Settled
        );
        VM.prank(arbiter);
        escrow.resolve(ORDER, toPayee);
        assertEq(usdc.balanceOf(payee), toPayee, "payee balance");
        assertEq(usdc.balanceOf(payer), payerAfterLock + AMOUNT - toPayee, "payer balance");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow balance");
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
    }
}
