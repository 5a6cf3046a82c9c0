// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";

contract RefundManyTest is EscrowTestBase {
    uint256 internal payerAfterLocks;

    function setUp() public override {
        super.setUp();
        _lock(ORDER);
        _lock(ORDER_2);
        _lock(ORDER_3);
        payerAfterLocks = usdc.balanceOf(payer);
    }

    function _ids(bytes32 a, bytes32 b) internal pure returns (bytes32[] memory ids) {
        ids = new bytes32[](2);
        ids[0] = a;
        ids[1] = b;
    }

    function _amounts(uint256 a, uint256 b) internal pure returns (uint256[] memory amounts) {
        amounts = new uint256[](2);
        amounts[0] = a;
        amounts[1] = b;
    }

    // ------------------------------------------------------------------ success

    function test_refundMany_payeeRefundsSeveralOrders() public {
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Refunded(ORDER, payee, AMOUNT, 0, IHoldfastEscrow.Status.Settled);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Refunded(ORDER_2, payee, 2e6, AMOUNT - 2e6, IHoldfastEscrow.Status.Held);
        VM.prank(payee);
        escrow.refundMany(_ids(ORDER, ORDER_2), _amounts(AMOUNT, 2e6));
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(_remaining(ORDER_2), AMOUNT - 2e6, "ORDER_2 remaining");
        assertEq(_remaining(ORDER_3), AMOUNT, "ORDER_3 untouched");
        assertEq(usdc.balanceOf(payer), payerAfterLocks + AMOUNT + 2e6, "payer balance");
    }

    function test_refundMany_anyoneRefundsExpiredOrders() public {
        VM.warp(uint256(deliverBy) + 1);
        VM.prank(stranger);
        escrow.refundMany(_ids(ORDER, ORDER_3), _amounts(AMOUNT, AMOUNT));
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        _assertStatus(ORDER_3, IHoldfastEscrow.Status.Settled);
        assertEq(usdc.balanceOf(payer), payerAfterLocks + 2 * AMOUNT, "payer balance");
    }

    function test_refundMany_payeeRefundsDeliveredAndHeld() public {
        _deliver(ORDER);
        VM.prank(payee);
        escrow.refundMany(_ids(ORDER, ORDER_2), _amounts(AMOUNT, AMOUNT));
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        _assertStatus(ORDER_2, IHoldfastEscrow.Status.Settled);
    }

    function test_refundMany_sameOrderTwiceAddsUp() public {
        VM.prank(payee);
        escrow.refundMany(_ids(ORDER, ORDER), _amounts(1, AMOUNT - 1));
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(usdc.balanceOf(payer), payerAfterLocks + AMOUNT, "payer balance");
    }

    function test_refundMany_emptyBatchIsANoOp() public {
        VM.recordLogs();
        escrow.refundMany(new bytes32[](0), new uint256[](0));
        assertEq(VM.getRecordedLogs().length, 0, "no logs");
    }

    function test_refundMany_creditsBlacklistedPayerAndPaysOthers() public {
        Terms memory t = _terms(keccak256("stranger's order"));
        t.payer = stranger;
        _lock(t);
        uint256 strangerBefore = usdc.balanceOf(stranger);
        usdc.blacklist(payer);
        VM.prank(payee);
        escrow.refundMany(_ids(ORDER, t.orderId), _amounts(AMOUNT, AMOUNT));
        assertEq(escrow.credits(payer), AMOUNT, "payer credit");
        assertEq(usdc.balanceOf(stranger), strangerBefore + AMOUNT, "stranger refunded");
    }

    // ------------------------------------------------------------------ reverts

    function test_refundMany_revertsOnLengthMismatch() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.LengthMismatch.selector, 2, 3));
        VM.prank(payee);
        escrow.refundMany(_ids(ORDER, ORDER_2), new uint256[](3));
    }

    function test_refundMany_isAtomicWhenOneRefundIsNotAllowed() public {
        _deliver(ORDER_2);
        VM.warp(uint256(deliverBy) + 1);
        // ORDER expired (refundable by anyone); ORDER_2 was delivered, so it never expires.
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.RefundNotAllowed.selector, ORDER_2, stranger, 0));
        VM.prank(stranger);
        escrow.refundMany(_ids(ORDER, ORDER_2), _amounts(AMOUNT, AMOUNT));
        _assertStatus(ORDER, IHoldfastEscrow.Status.Held);
        assertEq(usdc.balanceOf(payer), payerAfterLocks, "nothing refunded");
    }

    function test_refundMany_revertsExactlyAtDeliverBy() public {
        VM.warp(deliverBy);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.RefundNotAllowed.selector, ORDER, stranger, deliverBy));
        VM.prank(stranger);
        escrow.refundMany(_ids(ORDER, ORDER_2), _amounts(AMOUNT, AMOUNT));
    }

    function test_refundMany_isAtomicWhenOneAmountIsInvalid() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.AmountExceedsRemaining.selector, ORDER_2, 0, AMOUNT));
        VM.prank(payee);
        escrow.refundMany(_ids(ORDER, ORDER_2), _amounts(AMOUNT, 0));
        assertEq(_remaining(ORDER), AMOUNT, "ORDER unchanged");
    }

    function test_refundMany_revertsWhenAnOrderIsFrozen() public {
        _freeze(ORDER, payee);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, IHoldfastEscrow.Status.Frozen)
        );
        VM.prank(payee);
        escrow.refundMany(_ids(ORDER_2, ORDER), _amounts(AMOUNT, AMOUNT));
        assertEq(_remaining(ORDER_2), AMOUNT, "ORDER_2 unchanged");
    }

    function test_refundMany_revertsWhenSameOrderSettlesTwice() public {
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, IHoldfastEscrow.Status.Settled)
        );
        VM.prank(payee);
        escrow.refundMany(_ids(ORDER, ORDER), _amounts(AMOUNT, 1));
    }

    // ------------------------------------------------------------------ fuzz

    function testFuzz_refundMany_payeeBatchMatchesSingleRefunds(uint8 count, uint256 seed) public {
        uint256 n = bound(count, 1, 8);
        bytes32[] memory ids = new bytes32[](n);
        uint256[] memory amounts = new uint256[](n);
        uint256 total;
        for (uint256 i; i < n; ++i) {
            ids[i] = keccak256(abi.encode("batch", i));
            _lock(ids[i]);
            amounts[i] = bound(uint256(keccak256(abi.encode(seed, i))), 1, AMOUNT);
            total += amounts[i];
        }
        uint256 payerBefore = usdc.balanceOf(payer);
        VM.prank(payee);
        escrow.refundMany(ids, amounts);
        for (uint256 i; i < n; ++i) {
            assertEq(_remaining(ids[i]), AMOUNT - amounts[i], "remaining");
        }
        assertEq(usdc.balanceOf(payer), payerBefore + total, "payer balance");
        assertEq(usdc.balanceOf(address(escrow)), (n + 3) * AMOUNT - total, "escrow balance");
    }

    function testFuzz_refundMany_revertsOnAnyLengthMismatch(uint8 a, uint8 b) public {
        VM.assume(a != b);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.LengthMismatch.selector, a, b));
        escrow.refundMany(new bytes32[](a), new uint256[](b));
    }
}
