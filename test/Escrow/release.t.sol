// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";

contract ReleaseTest is EscrowTestBase {
    function setUp() public override {
        super.setUp();
        _lock(ORDER);
    }

    // ------------------------------------------------------------------ payer

    function test_release_payerReleasesWholeRemainderWhileHeld() public {
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Released(ORDER, payer, AMOUNT, 0, IHoldfastEscrow.Status.Settled);
        VM.prank(payer);
        escrow.release(ORDER, AMOUNT);
        _assertOrder(ORDER, payer, payee, 0, deliverBy, DISPUTE_WINDOW, IHoldfastEscrow.Status.Settled, false, arbiter);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee balance");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow balance");
        assertEq(escrow.credits(payee), 0, "no credit");
    }

    function test_release_payerReleasesPartWhileHeld() public {
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Released(ORDER, payer, 400e6, AMOUNT - 400e6, IHoldfastEscrow.Status.Held);
        VM.prank(payer);
        escrow.release(ORDER, 400e6);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Held);
        assertEq(_remaining(ORDER), AMOUNT - 400e6, "remaining");
        assertEq(usdc.balanceOf(payee), 400e6, "payee balance");
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT - 400e6, "escrow balance");
    }

    function test_release_payerReleasesPartWhileDelivered() public {
        uint256 releasableAt = block.timestamp + DISPUTE_WINDOW;
        _deliver(ORDER);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Released(ORDER, payer, 1, AMOUNT - 1, IHoldfastEscrow.Status.Delivered);
        VM.prank(payer);
        escrow.release(ORDER, 1);
        _assertOrder(
            ORDER,
            payer,
            payee,
            AMOUNT - 1,
            releasableAt,
            DISPUTE_WINDOW,
            IHoldfastEscrow.Status.Delivered,
            true,
            arbiter
        );
        assertEq(usdc.balanceOf(payee), 1, "payee balance");
    }

    function test_release_payerReleasesWholeRemainderBeforeReleasableAt() public {
        _deliver(ORDER);
        VM.prank(payer);
        escrow.release(ORDER, AMOUNT);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee balance");
    }

    function test_release_payerReleasesAfterDeliverByWithoutDelivery() public {
        VM.warp(uint256(deliverBy) + 100 days);
        VM.prank(payer);
        escrow.release(ORDER, AMOUNT);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee balance");
    }

    function test_release_payerReleasesInSeveralPartsUntilSettled() public {
        VM.startPrank(payer);
        escrow.release(ORDER, 300e6);
        escrow.release(ORDER, 300e6);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Released(ORDER, payer, 400e6, 0, IHoldfastEscrow.Status.Settled);
        escrow.release(ORDER, 400e6);
        VM.stopPrank();
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee balance");
    }

    function test_release_payerRevertsForZeroAmount() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.AmountExceedsRemaining.selector, ORDER, 0, AMOUNT));
        VM.prank(payer);
        escrow.release(ORDER, 0);
    }

    function test_release_payerRevertsAboveRemaining() public {
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.AmountExceedsRemaining.selector, ORDER, AMOUNT + 1, AMOUNT)
        );
        VM.prank(payer);
        escrow.release(ORDER, AMOUNT + 1);
    }

    function test_release_payerRevertsAboveRemainingAfterPartialRelease() public {
        VM.prank(payer);
        escrow.release(ORDER, 600e6);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.AmountExceedsRemaining.selector, ORDER, 400e6 + 1, 400e6)
        );
        VM.prank(payer);
        escrow.release(ORDER, 400e6 + 1);
    }

    // ------------------------------------------------------------------ auto-release (anyone else)

    function test_release_anyoneReleasesRemainderExactlyAtReleasableAt() public {
        uint256 releasableAt = _deliverNow();
        VM.warp(releasableAt);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Released(ORDER, stranger, AMOUNT, 0, IHoldfastEscrow.Status.Settled);
        VM.prank(stranger);
        escrow.release(ORDER, AMOUNT);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee balance");
        assertEq(usdc.balanceOf(stranger), FUNDS, "stranger gets nothing");
    }

    function test_release_anyoneRevertsOneSecondBeforeReleasableAt() public {
        uint256 releasableAt = _deliverNow();
        VM.warp(releasableAt - 1);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.ReleaseNotAllowed.selector, ORDER, stranger, releasableAt)
        );
        VM.prank(stranger);
        escrow.release(ORDER, AMOUNT);
    }

    function test_release_payeeCanExecuteAutoRelease() public {
        VM.warp(_deliverNow());
        VM.prank(payee);
        escrow.release(ORDER, AMOUNT);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee balance");
    }

    function test_release_arbiterCanExecuteAutoRelease() public {
        VM.warp(_deliverNow() + 365 days);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Released(ORDER, arbiter, AMOUNT, 0, IHoldfastEscrow.Status.Settled);
        VM.prank(arbiter);
        escrow.release(ORDER, AMOUNT);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee balance");
        assertEq(usdc.balanceOf(arbiter), 0, "arbiter balance");
    }

    function test_release_payeeRevertsWhileHeld() public {
        _expectReleaseNotAllowed(payee, 0);
    }

    function test_release_arbiterRevertsWhileHeld() public {
        _expectReleaseNotAllowed(arbiter, 0);
    }

    function test_release_strangerRevertsWhileHeld() public {
        _expectReleaseNotAllowed(stranger, 0);
    }

    function test_release_strangerRevertsWhileHeldAfterDeliverBy() public {
        VM.warp(uint256(deliverBy) + 365 days);
        _expectReleaseNotAllowed(stranger, 0);
    }

    function test_release_payeeRevertsBeforeReleasableAt() public {
        uint256 releasableAt = _deliverNow();
        _expectReleaseNotAllowed(payee, releasableAt);
    }

    function test_release_autoReleaseRevertsForPartialAmount() public {
        VM.warp(_deliverNow());
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.MustSettleRemainder.selector, ORDER, AMOUNT - 1, AMOUNT));
        VM.prank(stranger);
        escrow.release(ORDER, AMOUNT - 1);
    }

    function test_release_autoReleaseRevertsAboveRemaining() public {
        VM.warp(_deliverNow());
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.MustSettleRemainder.selector, ORDER, AMOUNT + 1, AMOUNT));
        VM.prank(stranger);
        escrow.release(ORDER, AMOUNT + 1);
    }

    function test_release_autoReleaseRevertsForZeroAmount() public {
        VM.warp(_deliverNow());
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.MustSettleRemainder.selector, ORDER, 0, AMOUNT));
        VM.prank(stranger);
        escrow.release(ORDER, 0);
    }

    function test_release_autoReleaseChecksTimeBeforeAmount() public {
        uint256 releasableAt = _deliverNow();
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.ReleaseNotAllowed.selector, ORDER, stranger, releasableAt)
        );
        VM.prank(stranger);
        escrow.release(ORDER, 1);
    }

    function test_release_autoReleaseSettlesRemainderAfterPartialPayments() public {
        VM.prank(payer);
        escrow.release(ORDER, 100e6);
        VM.prank(payee);
        escrow.refund(ORDER, 50e6);
        VM.warp(_deliverNow());
        uint256 left = AMOUNT - 150e6;
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Released(ORDER, stranger, left, 0, IHoldfastEscrow.Status.Settled);
        VM.prank(stranger);
        escrow.release(ORDER, left);
        assertEq(usdc.balanceOf(payee), AMOUNT - 50e6, "payee balance");
        assertEq(usdc.balanceOf(payer), FUNDS - AMOUNT + 50e6, "payer balance");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow balance");
    }

    function test_release_payerMayReleasePartAfterReleasableAt() public {
        VM.warp(_deliverNow() + 1);
        VM.prank(payer);
        escrow.release(ORDER, 5);
        assertEq(_remaining(ORDER), AMOUNT - 5, "remaining");
        _assertStatus(ORDER, IHoldfastEscrow.Status.Delivered);
    }

    function _expectReleaseNotAllowed(address caller, uint256 releasableAt) private {
        bytes32 before = _orderHash(ORDER);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.ReleaseNotAllowed.selector, ORDER, caller, releasableAt));
        VM.prank(caller);
        escrow.release(ORDER, AMOUNT);
        assertEq(_orderHash(ORDER), before, "order unchanged");
    }

    function _deliverNow() private returns (uint256 releasableAt) {
        _deliver(ORDER);
        releasableAt = block.timestamp + DISPUTE_WINDOW;
    }

    // ------------------------------------------------------------------ status

    function test_release_revertsForUnknownOrder() public {
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER_2, IHoldfastEscrow.Status.None)
        );
        VM.prank(payer);
        escrow.release(ORDER_2, 1);
    }

    function test_release_revertsWhenFrozen() public {
        _freeze(ORDER, payee);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, IHoldfastEscrow.Status.Frozen)
        );
        VM.prank(payer);
        escrow.release(ORDER, AMOUNT);
    }

    function test_release_revertsWhenFrozenEvenAfterReleasableAt() public {
        uint256 releasableAt = _deliverNow();
        _freeze(ORDER, payer);
        VM.warp(releasableAt + 1);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, IHoldfastEscrow.Status.Frozen)
        );
        VM.prank(stranger);
        escrow.release(ORDER, AMOUNT);
    }

    function test_release_revertsWhenSettled() public {
        VM.prank(payer);
        escrow.release(ORDER, AMOUNT);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, IHoldfastEscrow.Status.Settled)
        );
        VM.prank(payer);
        escrow.release(ORDER, 1);
    }

    // ------------------------------------------------------------------ refused payouts

    function test_release_creditsBlacklistedPayee() public {
        usdc.blacklist(payee);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Released(ORDER, payer, AMOUNT, 0, IHoldfastEscrow.Status.Settled);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.PayoutDeferred(ORDER, payee, AMOUNT);
        VM.prank(payer);
        escrow.release(ORDER, AMOUNT);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(escrow.credits(payee), AMOUNT, "credit");
        assertEq(usdc.balanceOf(payee), 0, "payee balance");
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT, "escrow keeps the credit");
    }

    function test_release_autoReleaseToBlacklistedPayeeIsCredited() public {
        VM.warp(_deliverNow());
        usdc.blacklist(payee);
        VM.prank(stranger);
        escrow.release(ORDER, AMOUNT);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(escrow.credits(payee), AMOUNT, "credit");
    }

    function test_release_partialCreditsAccumulate() public {
        usdc.blacklist(payee);
        VM.startPrank(payer);
        escrow.release(ORDER, 1e6);
        escrow.release(ORDER, 2e6);
        VM.stopPrank();
        assertEq(escrow.credits(payee), 3e6, "credit");
        assertEq(_remaining(ORDER), AMOUNT - 3e6, "remaining");
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT, "escrow balance");
    }

    function test_release_successfulPayoutEmitsNoPayoutDeferred() public {
        VM.recordLogs();
        VM.prank(payer);
        escrow.release(ORDER, AMOUNT);
        assertEq(_countLogs(address(escrow), IHoldfastEscrow.PayoutDeferred.selector), 0, "PayoutDeferred logs");
    }

    // ------------------------------------------------------------------ fuzz

    function testFuzz_release_payerAnyAmountUpToRemaining(uint256 amount, bool delivered) public {
        amount = bound(amount, 1, AMOUNT);
        if (delivered) _deliver(ORDER);
        IHoldfastEscrow.Status expected = amount == AMOUNT
            ? IHoldfastEscrow.Status.Settled
            : (delivered ? IHoldfastEscrow.Status.Delivered : IHoldfastEscrow.Status.Held);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Released(ORDER, payer, amount, AMOUNT - amount, expected);
        VM.prank(payer);
        escrow.release(ORDER, amount);
        assertEq(_remaining(ORDER), AMOUNT - amount, "remaining");
        _assertStatus(ORDER, expected);
        assertEq(usdc.balanceOf(payee), amount, "payee balance");
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT - amount, "escrow balance");
    }

    function testFuzz_release_payerRevertsAboveRemaining(uint256 amount) public {
        amount = bound(amount, AMOUNT + 1, type(uint256).max);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.AmountExceedsRemaining.selector, ORDER, amount, AMOUNT));
        VM.prank(payer);
        escrow.release(ORDER, amount);
    }

    function testFuzz_release_anyoneFromReleasableAt(address caller, uint256 when, uint32 disputeWindow) public {
        VM.assume(caller != payer && caller != address(escrow));
        Terms memory t = _terms(ORDER_2);
        t.disputeWindow = disputeWindow;
        _lock(t);
        uint256 deliveredAt = bound(when, START, deliverBy);
        VM.warp(deliveredAt);
        VM.prank(payee);
        escrow.deliver(ORDER_2, EVIDENCE);
        uint256 releasableAt = deliveredAt + disputeWindow;
        VM.warp(bound(when, releasableAt, releasableAt + 3650 days));
        uint256 before = usdc.balanceOf(payee);
        VM.prank(caller);
        escrow.release(ORDER_2, AMOUNT);
        _assertStatus(ORDER_2, IHoldfastEscrow.Status.Settled);
        assertEq(usdc.balanceOf(payee), before + AMOUNT, "payee balance");
    }

    function testFuzz_release_anyoneRevertsBeforeReleasableAt(address caller, uint256 when) public {
        VM.assume(caller != payer);
        uint256 releasableAt = _deliverNow();
        VM.warp(bound(when, START, releasableAt - 1));
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.ReleaseNotAllowed.selector, ORDER, caller, releasableAt));
        VM.prank(caller);
        escrow.release(ORDER, AMOUNT);
    }

    function testFuzz_release_anyoneRevertsForAnyAmountButRemainder(uint256 amount) public {
        VM.assume(amount != AMOUNT);
        VM.warp(_deliverNow());
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.MustSettleRemainder.selector, ORDER, amount, AMOUNT));
        VM.prank(stranger);
        escrow.release(ORDER, amount);
    }
}

/// @notice The payout is made with a low-level call that may fail; a caller must not be able to make it fail
///         on purpose by starving it of gas (which would turn a payment into a credit). Order state is set up
///         in setUp so the test call starts with cold storage, as a real transaction would.
contract ReleaseGasStarvationTest is EscrowTestBase {
    function setUp() public override {
        super.setUp();
        // A previous credit for the payee: its slot is non-zero, so crediting again is the cheap case.
        usdc.blacklist(payee);
        _lock(ORDER_2);
        VM.prank(payer);
        escrow.release(ORDER_2, AMOUNT);
        usdc.unBlacklist(payee);

        _lock(ORDER);
        _deliver(ORDER);
        VM.warp(block.timestamp + DISPUTE_WINDOW);
    }

    function _starvedRelease(bytes32 orderId, uint256 gasLimit) private returns (bool ok) {
        VM.prank(stranger);
        (ok,) = address(escrow).call{gas: gasLimit}(abi.encodeCall(escrow.release, (orderId, AMOUNT)));
    }

    function _checkOutcome(bytes32 orderId, bool ok, uint256 creditBefore) private view {
        if (ok) {
            _assertStatus(orderId, IHoldfastEscrow.Status.Settled);
            assertEq(usdc.balanceOf(payee), AMOUNT, "paid, not credited");
            assertEq(escrow.credits(payee), creditBefore, "no new credit");
        } else {
            _assertStatus(orderId, IHoldfastEscrow.Status.Delivered);
            assertEq(_remaining(orderId), AMOUNT, "remaining");
            assertEq(usdc.balanceOf(payee), 0, "payee balance");
            assertEq(escrow.credits(payee), creditBefore, "credit");
        }
    }

    function test_release_gasStarvedCallRevertsInsteadOfCrediting() public {
        bool ok = _starvedRelease(ORDER, 40_000);
        assertFalse(ok, "starved call must revert");
        _checkOutcome(ORDER, ok, AMOUNT);
    }

    /// @dev Every gas limit across the whole failure/success boundary (step 250 gas): each call either
    ///      reverts entirely or pays the payee; none ends with a new credit.
    function test_release_gasStarvationSweepNeverCredits() public {
        uint256 failures;
        uint256 successes;
        for (uint256 g = 30_000; g <= 130_000; g += 250) {
            uint256 snapshot = VM.snapshotState();
            bool ok = _starvedRelease(ORDER, g);
            _checkOutcome(ORDER, ok, AMOUNT);
            if (ok) ++successes;
            else ++failures;
            VM.revertToState(snapshot);
        }
        assertGt(failures, 0, "some limits too low");
        assertGt(successes, 0, "some limits enough");
    }

    function test_release_enoughGasPays() public {
        bool ok = _starvedRelease(ORDER, 200_000);
        assertTrue(ok, "call succeeds");
        _checkOutcome(ORDER, ok, AMOUNT);
    }

    /// @dev With `freshPayee`, the payee's credit slot is zero again, so crediting would be the expensive case
    ///      (zero to non-zero SSTORE); otherwise it is the cheap one (non-zero to non-zero).
    function testFuzz_release_gasStarvationNeverForcesCredit(uint256 gasLimit, bool freshPayee) public {
        gasLimit = bound(gasLimit, 21_000, 250_000);
        if (freshPayee) {
            // Move the old credit away so the payee's credit slot is zero again.
            escrow.withdraw(payee);
            VM.prank(payee);
            assertTrue(usdc.transfer(stranger, AMOUNT), "transfer");
        }
        uint256 creditBefore = escrow.credits(payee);
        bool ok = _starvedRelease(ORDER, gasLimit);
        _checkOutcome(ORDER, ok, creditBefore);
    }
}
