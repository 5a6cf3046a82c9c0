// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";

contract GetOrderTest is EscrowTestBase {
    IHoldfastEscrow.Status internal constant NONE = IHoldfastEscrow.Status.None;
    IHoldfastEscrow.Status internal constant HELD = IHoldfastEscrow.Status.Held;
    IHoldfastEscrow.Status internal constant DELIVERED = IHoldfastEscrow.Status.Delivered;
    IHoldfastEscrow.Status internal constant FROZEN = IHoldfastEscrow.Status.Frozen;
    IHoldfastEscrow.Status internal constant SETTLED = IHoldfastEscrow.Status.Settled;

    function test_getOrder_unknownOrderIsAllZero() public view {
        _assertOrder(ORDER, address(0), address(0), 0, 0, 0, NONE, false, address(0));
        _assertOrder(bytes32(0), address(0), address(0), 0, 0, 0, NONE, false, address(0));
    }

    function test_getOrder_heldDeadlineIsDeliverBy() public {
        _lock(ORDER);
        _assertOrder(ORDER, payer, payee, AMOUNT, deliverBy, DISPUTE_WINDOW, HELD, false, arbiter);
    }

    function test_getOrder_noArbiterIsZero() public {
        _lockNoArbiter(ORDER);
        (IHoldfastEscrow.Order memory o, address a) = escrow.getOrder(ORDER);
        assertEq(a, address(0), "arbiter");
        assertFalse(o.hasArbiter, "hasArbiter");
    }

    function test_getOrder_reportsHasArbiter() public {
        _lock(ORDER);
        (IHoldfastEscrow.Order memory o, address a) = escrow.getOrder(ORDER);
        assertEq(a, arbiter, "arbiter");
        assertTrue(o.hasArbiter, "hasArbiter");
    }

    function test_getOrder_deliveredDeadlineIsReleasableAt() public {
        _lock(ORDER);
        VM.warp(START + 2 days);
        _deliver(ORDER);
        _assertOrder(
            ORDER, payer, payee, AMOUNT, START + 2 days + DISPUTE_WINDOW, DISPUTE_WINDOW, DELIVERED, true, arbiter
        );
    }

    function test_getOrder_frozenDeadlineIsTimeout() public {
        _lock(ORDER);
        _deliver(ORDER);
        VM.warp(START + 1 days);
        _freeze(ORDER, payer);
        _assertOrder(ORDER, payer, payee, AMOUNT, START + 31 days, DISPUTE_WINDOW, FROZEN, true, arbiter);
    }

    function test_getOrder_settledByReleaseKeepsDeadlineInForce() public {
        _lock(ORDER);
        _deliver(ORDER);
        VM.warp(START + DISPUTE_WINDOW);
        VM.prank(stranger);
        escrow.release(ORDER, AMOUNT);
        _assertOrder(ORDER, payer, payee, 0, START + DISPUTE_WINDOW, DISPUTE_WINDOW, SETTLED, true, arbiter);
    }

    function test_getOrder_settledByRefundWhileHeldKeepsDeliverBy() public {
        _lock(ORDER);
        VM.prank(payee);
        escrow.refund(ORDER, AMOUNT);
        _assertOrder(ORDER, payer, payee, 0, deliverBy, DISPUTE_WINDOW, SETTLED, false, arbiter);
    }

    function test_getOrder_settledByResolveKeepsTimeout() public {
        _lock(ORDER);
        uint256 timeoutAt = _freeze(ORDER, payee);
        VM.prank(arbiter);
        escrow.resolve(ORDER, 1);
        _assertOrder(ORDER, payer, payee, 0, timeoutAt, DISPUTE_WINDOW, SETTLED, false, arbiter);
    }

    function test_getOrder_settledByResolveByTimeoutKeepsTimeout() public {
        _lockAndDeliver(ORDER);
        uint256 timeoutAt = _freeze(ORDER, payer);
        VM.warp(timeoutAt);
        escrow.resolveByTimeout(ORDER);
        _assertOrder(ORDER, payer, payee, 0, timeoutAt, DISPUTE_WINDOW, SETTLED, true, arbiter);
    }

    function test_getOrder_settledWithoutArbiterReportsNoArbiter() public {
        _lockNoArbiter(ORDER);
        VM.warp(uint256(deliverBy) + 1);
        VM.prank(stranger);
        escrow.refund(ORDER, AMOUNT);
        _assertOrder(ORDER, payer, payee, 0, deliverBy, DISPUTE_WINDOW, SETTLED, false, address(0));
    }

    function test_getOrder_settledByPartialPaymentsReportsSettled() public {
        _lock(ORDER);
        VM.prank(payer);
        escrow.release(ORDER, AMOUNT - 1);
        _assertOrder(ORDER, payer, payee, 1, deliverBy, DISPUTE_WINDOW, HELD, false, arbiter);
        VM.prank(payee);
        escrow.refund(ORDER, 1);
        _assertOrder(ORDER, payer, payee, 0, deliverBy, DISPUTE_WINDOW, SETTLED, false, arbiter);
    }

    function test_getOrder_partialPaymentsReduceRemaining() public {
        _lock(ORDER);
        VM.prank(payer);
        escrow.release(ORDER, 3);
        VM.prank(payee);
        escrow.refund(ORDER, 4);
        _assertOrder(ORDER, payer, payee, AMOUNT - 7, deliverBy, DISPUTE_WINDOW, HELD, false, arbiter);
    }

    /// @dev IHoldfastEscrow.Order says "two storage slots, plus one for a non-zero arbiter's address". The
    ///      escrow's only storage variables are _orders (slot 0), _arbiters (slot 1) and credits (slot 2); the
    ///      reentrancy guard is transient. Slot 1 of an order is payee (160 bits) | deadline (40) |
    ///      disputeWindow (32) | status (8) | delivered (8) | hasArbiter (8): all 256 bits.
    function test_getOrder_orderUsesTwoSlotsPlusOneForArbiter() public {
        _lock(ORDER);
        _lockNoArbiter(ORDER_2);
        bytes32 base1 = keccak256(abi.encode(ORDER, uint256(0)));
        bytes32 base2 = keccak256(abi.encode(ORDER_2, uint256(0)));
        bytes32 slot0 = VM.load(address(escrow), base1);
        bytes32 slot1 = VM.load(address(escrow), bytes32(uint256(base1) + 1));
        assertEq(address(uint160(uint256(slot0))), payer, "slot 0: payer");
        assertEq(uint256(slot0) >> 160, AMOUNT, "slot 0: remaining");
        assertEq(address(uint160(uint256(slot1))), payee, "slot 1: payee");
        assertEq((uint256(slot1) >> 160) & type(uint40).max, deliverBy, "slot 1: deadline");
        assertEq((uint256(slot1) >> 200) & type(uint32).max, DISPUTE_WINDOW, "slot 1: disputeWindow");
        assertEq((uint256(slot1) >> 232) & 0xff, uint256(HELD), "slot 1: status");
        assertEq((uint256(slot1) >> 240) & 0xff, 0, "slot 1: delivered");
        assertEq(uint256(slot1) >> 248, 1, "slot 1: hasArbiter (last byte)");
        assertEq(VM.load(address(escrow), bytes32(uint256(base1) + 2)), bytes32(0), "no third slot");
        assertEq(
            VM.load(address(escrow), keccak256(abi.encode(ORDER, uint256(1)))),
            bytes32(uint256(uint160(arbiter))),
            "arbiter slot"
        );
        assertEq(VM.load(address(escrow), keccak256(abi.encode(ORDER_2, uint256(1)))), bytes32(0), "no arbiter slot");
        assertTrue(VM.load(address(escrow), base2) != bytes32(0), "order 2 stored");
        bytes32 slot1Of2 = VM.load(address(escrow), bytes32(uint256(base2) + 1));
        assertEq(uint256(slot1Of2) >> 248, 0, "order 2, slot 1: no hasArbiter");
        assertEq((uint256(slot1Of2) >> 232) & 0xff, uint256(HELD), "order 2, slot 1: status");
    }

    /// @dev `Settled` is not stored: a settled order keeps its last active status in slot 1 with
    ///      `remaining == 0` in slot 0, and getOrder derives `Settled` from that.
    function test_getOrder_settledOrderKeepsLastActiveStatusInStorage() public {
        _lock(ORDER); // settled from Held
        VM.prank(payee);
        escrow.refund(ORDER, AMOUNT);
        _lockAndDeliver(ORDER_2); // settled from Delivered
        VM.prank(payer);
        escrow.release(ORDER_2, AMOUNT);
        _lock(ORDER_3); // settled from Frozen
        _freeze(ORDER_3, payee);
        VM.prank(arbiter);
        escrow.resolve(ORDER_3, 1);

        _assertStoredSettled(ORDER, HELD, false);
        _assertStoredSettled(ORDER_2, DELIVERED, true);
        _assertStoredSettled(ORDER_3, FROZEN, false);
    }

    function _assertStoredSettled(bytes32 orderId, IHoldfastEscrow.Status stored, bool delivered) private view {
        bytes32 base = keccak256(abi.encode(orderId, uint256(0)));
        uint256 slot0 = uint256(VM.load(address(escrow), base));
        uint256 slot1 = uint256(VM.load(address(escrow), bytes32(uint256(base) + 1)));
        // forge-lint: disable-next-line(unsafe-typecast) the low 160 bits of slot 0 are the payer
        assertEq(address(uint160(slot0)), payer, "slot 0: payer kept");
        assertEq(slot0 >> 160, 0, "slot 0: remaining 0");
        assertEq((slot1 >> 232) & 0xff, uint256(stored), "slot 1: last active status kept");
        assertEq((slot1 >> 240) & 0xff, delivered ? 1 : 0, "slot 1: delivered");
        assertEq(slot1 >> 248, 1, "slot 1: hasArbiter");
        (IHoldfastEscrow.Order memory o,) = escrow.getOrder(orderId);
        assertEq(uint256(o.status), uint256(SETTLED), "getOrder: Settled");
        assertEq(uint256(o.remaining), 0, "getOrder: remaining");
        assertTrue(o.hasArbiter, "getOrder: hasArbiter");
    }

    function testFuzz_getOrder_unknownIdsAreEmpty(bytes32 orderId) public {
        VM.assume(orderId != ORDER);
        _lock(ORDER);
        _assertOrder(orderId, address(0), address(0), 0, 0, 0, NONE, false, address(0));
    }
}
