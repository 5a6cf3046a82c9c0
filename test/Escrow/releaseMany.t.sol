// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";

contract ReleaseManyTest is EscrowTestBase {
    function setUp() public override {
        super.setUp();
        _lock(ORDER);
        _lock(ORDER_2);
        _lock(ORDER_3);
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

    function test_releaseMany_payerReleasesSeveralOrders() public {
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Released(ORDER, payer, AMOUNT, 0, IHoldfastEscrow.Status.Settled);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Released(ORDER_2, payer, 1e6, AMOUNT - 1e6, IHoldfastEscrow.Status.Held);
        VM.prank(payer);
        escrow.releaseMany(_ids(ORDER, ORDER_2), _amounts(AMOUNT, 1e6));
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(_remaining(ORDER_2), AMOUNT - 1e6, "ORDER_2 remaining");
        assertEq(_remaining(ORDER_3), AMOUNT, "ORDER_3 untouched");
        assertEq(usdc.balanceOf(payee), AMOUNT + 1e6, "payee balance");
        assertEq(usdc.balanceOf(address(escrow)), 2 * AMOUNT - 1e6, "escrow balance");
    }

    function test_releaseMany_anyoneAutoReleasesDeliveredOrders() public {
        _deliver(ORDER);
        _deliver(ORDER_3);
        VM.warp(START + DISPUTE_WINDOW);
        VM.prank(stranger);
        escrow.releaseMany(_ids(ORDER, ORDER_3), _amounts(AMOUNT, AMOUNT));
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        _assertStatus(ORDER_3, IHoldfastEscrow.Status.Settled);
        assertEq(usdc.balanceOf(payee), 2 * AMOUNT, "payee balance");
    }

    function test_releaseMany_mixesPayerReleaseAndAutoRelease() public {
        // ORDER_2 belongs to another payer: the caller is "anyone" there, and the payer of ORDER.
        Terms memory t = _terms(ORDER_2);
        t.orderId = keccak256("stranger's order");
        t.payer = stranger;
        _lock(t);
        VM.prank(payee);
        escrow.deliver(t.orderId, EVIDENCE);
        VM.warp(START + DISPUTE_WINDOW);
        VM.prank(payer);
        escrow.releaseMany(_ids(ORDER, t.orderId), _amounts(10, AMOUNT));
        assertEq(_remaining(ORDER), AMOUNT - 10, "ORDER remaining");
        _assertStatus(t.orderId, IHoldfastEscrow.Status.Settled);
        assertEq(usdc.balanceOf(payee), AMOUNT + 10, "payee balance");
    }

    function test_releaseMany_sameOrderTwiceAddsUp() public {
        VM.prank(payer);
        escrow.releaseMany(_ids(ORDER, ORDER), _amounts(400e6, 600e6));
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee balance");
    }

    function test_releaseMany_emptyBatchIsANoOp() public {
        VM.recordLogs();
        VM.prank(stranger);
        escrow.releaseMany(new bytes32[](0), new uint256[](0));
        assertEq(VM.getRecordedLogs().length, 0, "no logs");
        assertEq(usdc.balanceOf(address(escrow)), 3 * AMOUNT, "escrow balance");
    }

    function test_releaseMany_creditsBlacklistedPayeeAndPaysOthers() public {
        address payee2 = makeAddr("payee2");
        Terms memory t = _terms(keccak256("to payee2"));
        t.payee = payee2;
        _lock(t);
        usdc.blacklist(payee);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.PayoutDeferred(ORDER, payee, AMOUNT);
        VM.prank(payer);
        escrow.releaseMany(_ids(ORDER, t.orderId), _amounts(AMOUNT, AMOUNT));
        assertEq(escrow.credits(payee), AMOUNT, "credit");
        assertEq(usdc.balanceOf(payee2), AMOUNT, "payee2 paid");
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        _assertStatus(t.orderId, IHoldfastEscrow.Status.Settled);
    }

    // ------------------------------------------------------------------ reverts

    function test_releaseMany_revertsOnLengthMismatch() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.LengthMismatch.selector, 2, 1));
        VM.prank(payer);
        escrow.releaseMany(_ids(ORDER, ORDER_2), new uint256[](1));
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.LengthMismatch.selector, 0, 2));
        VM.prank(payer);
        escrow.releaseMany(new bytes32[](0), _amounts(1, 1));
    }

    function test_releaseMany_isAtomicWhenOneReleaseIsNotAllowed() public {
        // ORDER is fine for the payer; a stranger's order is not delivered, so the payer may not release it.
        Terms memory t = _terms(ORDER_2);
        t.orderId = keccak256("stranger's order");
        t.payer = stranger;
        _lock(t);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.ReleaseNotAllowed.selector, t.orderId, payer, 0));
        VM.prank(payer);
        escrow.releaseMany(_ids(ORDER, t.orderId), _amounts(AMOUNT, AMOUNT));
        _assertStatus(ORDER, IHoldfastEscrow.Status.Held);
        assertEq(_remaining(ORDER), AMOUNT, "ORDER unchanged");
        assertEq(usdc.balanceOf(payee), 0, "nothing paid");
    }

    function test_releaseMany_isAtomicWhenOneAmountIsInvalid() public {
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.AmountExceedsRemaining.selector, ORDER_2, AMOUNT + 1, AMOUNT)
        );
        VM.prank(payer);
        escrow.releaseMany(_ids(ORDER, ORDER_2), _amounts(AMOUNT, AMOUNT + 1));
        assertEq(_remaining(ORDER), AMOUNT, "ORDER unchanged");
        assertEq(usdc.balanceOf(payee), 0, "nothing paid");
    }

    function test_releaseMany_revertsWhenAnOrderIsFrozen() public {
        _freeze(ORDER_2, payee);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER_2, IHoldfastEscrow.Status.Frozen)
        );
        VM.prank(payer);
        escrow.releaseMany(_ids(ORDER, ORDER_2), _amounts(AMOUNT, AMOUNT));
        assertEq(_remaining(ORDER), AMOUNT, "ORDER unchanged");
    }

    function test_releaseMany_revertsWhenSameOrderSettlesTwice() public {
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, IHoldfastEscrow.Status.Settled)
        );
        VM.prank(payer);
        escrow.releaseMany(_ids(ORDER, ORDER), _amounts(AMOUNT, AMOUNT));
        _assertStatus(ORDER, IHoldfastEscrow.Status.Held);
    }

    function test_releaseMany_revertsOneSecondBeforeReleasableAt() public {
        _deliver(ORDER);
        _deliver(ORDER_2);
        uint256 releasableAt = START + DISPUTE_WINDOW;
        VM.warp(releasableAt - 1);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.ReleaseNotAllowed.selector, ORDER, stranger, releasableAt)
        );
        VM.prank(stranger);
        escrow.releaseMany(_ids(ORDER, ORDER_2), _amounts(AMOUNT, AMOUNT));
    }

    function test_releaseMany_revertsForUnknownOrder() public {
        bytes32 unknown = keccak256("unknown");
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, unknown, IHoldfastEscrow.Status.None)
        );
        VM.prank(payer);
        escrow.releaseMany(_ids(ORDER, unknown), _amounts(1, 1));
    }

    // ------------------------------------------------------------------ fuzz

    function testFuzz_releaseMany_payerBatchMatchesSingleReleases(uint8 count, uint256 seed) public {
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
        VM.prank(payer);
        escrow.releaseMany(ids, amounts);
        for (uint256 i; i < n; ++i) {
            assertEq(_remaining(ids[i]), AMOUNT - amounts[i], "remaining");
            _assertStatus(ids[i], amounts[i] == AMOUNT ? IHoldfastEscrow.Status.Settled : IHoldfastEscrow.Status.Held);
        }
        assertEq(usdc.balanceOf(payee), total, "payee balance");
        assertEq(usdc.balanceOf(address(escrow)), (n + 3) * AMOUNT - total, "escrow balance");
    }

    function testFuzz_releaseMany_revertsOnAnyLengthMismatch(uint8 a, uint8 b) public {
        VM.assume(a != b);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.LengthMismatch.selector, a, b));
        escrow.releaseMany(new bytes32[](a), new uint256[](b));
    }
}
