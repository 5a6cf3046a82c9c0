// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {MockUSDC} from "../mocks/MockUSDC.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

contract LockTest is EscrowTestBase {
    // ------------------------------------------------------------------ success

    function test_lock_storesOrderWithAllTerms() public {
        _lock(ORDER);
        _assertOrder(
            ORDER, payer, payee, AMOUNT, deliverBy, DISPUTE_WINDOW, IHoldfastEscrow.Status.Held, false, arbiter
        );
    }

    function test_lock_emitsLockedWithAllTerms() public {
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Locked(
            ORDER, payer, payee, arbiter, AMOUNT, deliverBy, DISPUTE_WINDOW, IHoldfastEscrow.Status.Held
        );
        _lock(ORDER);
    }

    function test_lock_pullsAmountFromPayer() public {
        uint256 payerBefore = usdc.balanceOf(payer);
        _lock(ORDER);
        assertEq(usdc.balanceOf(payer), payerBefore - AMOUNT, "payer balance");
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT, "escrow balance");
        assertEq(usdc.balanceOf(payee), 0, "payee balance");
    }

    function test_lock_spendsExactAllowance() public {
        VM.prank(payer);
        usdc.approve(address(escrow), AMOUNT);
        _lock(ORDER);
        assertEq(usdc.allowance(payer, address(escrow)), 0, "allowance left");
    }

    function test_lock_withoutArbiterStoresZeroArbiter() public {
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Locked(
            ORDER, payer, payee, address(0), AMOUNT, deliverBy, DISPUTE_WINDOW, IHoldfastEscrow.Status.Held
        );
        _lockNoArbiter(ORDER);
        _assertOrder(
            ORDER, payer, payee, AMOUNT, deliverBy, DISPUTE_WINDOW, IHoldfastEscrow.Status.Held, false, address(0)
        );
    }

    function test_lock_acceptsMaxUint96Amount() public {
        uint256 amount = type(uint96).max;
        usdc.mint(payer, amount);
        Terms memory t = _terms(ORDER);
        t.amount = amount;
        _lock(t);
        assertEq(_remaining(ORDER), amount, "remaining");
        assertEq(usdc.balanceOf(address(escrow)), amount, "escrow balance");
    }

    function test_lock_acceptsDeliverByOneSecondFromNow() public {
        Terms memory t = _terms(ORDER);
        t.deliverBy = uint64(block.timestamp + 1);
        _lock(t);
        assertEq(_order(ORDER).deadline, block.timestamp + 1, "deadline");
    }

    function test_lock_acceptsLatestDeliverBy() public {
        // deliverBy + disputeWindow + FREEZE_TIMEOUT == 2^40-1 exactly.
        Terms memory t = _terms(ORDER);
        t.deliverBy = uint64(type(uint40).max - DISPUTE_WINDOW - 30 days);
        assertEq(t.deliverBy, _maxDeliverBy(DISPUTE_WINDOW), "helper");
        _lock(t);
        assertEq(_order(ORDER).deadline, t.deliverBy, "deadline");
    }

    function test_lock_acceptsLatestDeliverByWithZeroDisputeWindow() public {
        Terms memory t = _terms(ORDER);
        t.disputeWindow = 0;
        t.deliverBy = uint64(type(uint40).max - 30 days);
        _lock(t);
        assertEq(_order(ORDER).deadline, t.deliverBy, "deadline");
    }

    function test_lock_acceptsLatestDeliverByWithMaxDisputeWindow() public {
        Terms memory t = _terms(ORDER);
        t.disputeWindow = type(uint32).max;
        t.deliverBy = uint64(type(uint40).max - uint256(type(uint32).max) - 30 days);
        _lock(t);
        assertEq(_order(ORDER).deadline, t.deliverBy, "deadline");
    }

    function test_lock_acceptsZeroDisputeWindow() public {
        Terms memory t = _terms(ORDER);
        t.disputeWindow = 0;
        _lock(t);
        assertEq(_order(ORDER).disputeWindow, 0, "disputeWindow");
    }

    function test_lock_acceptsMaxDisputeWindow() public {
        Terms memory t = _terms(ORDER);
        t.disputeWindow = type(uint32).max;
        _lock(t);
        assertEq(_order(ORDER).disputeWindow, type(uint32).max, "disputeWindow");
    }

    function test_lock_succeedsWhenPayeeIsBlacklisted() public {
        usdc.blacklist(payee);
        _lock(ORDER);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Held);
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT, "escrow balance");
    }

    function test_lock_independentOrdersKeepTheirOwnTerms() public {
        _lock(ORDER);
        Terms memory t = _terms(ORDER_2);
        t.payer = stranger;
        t.amount = 7;
        t.arbiter = address(0);
        t.deliverBy = deliverBy + 1;
        t.disputeWindow = 1;
        _lock(t);
        _assertOrder(
            ORDER, payer, payee, AMOUNT, deliverBy, DISPUTE_WINDOW, IHoldfastEscrow.Status.Held, false, arbiter
        );
        _assertOrder(ORDER_2, stranger, payee, 7, deliverBy + 1, 1, IHoldfastEscrow.Status.Held, false, address(0));
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT + 7, "escrow balance");
    }

    function test_lock_sameTermsUnderANewOrderIdIsANewOrder() public {
        _lock(ORDER);
        _lock(ORDER_2);
        assertEq(_remaining(ORDER), AMOUNT, "first");
        assertEq(_remaining(ORDER_2), AMOUNT, "second");
        assertEq(usdc.balanceOf(address(escrow)), 2 * AMOUNT, "escrow balance");
    }

    // ------------------------------------------------------------------ order id

    function test_lock_revertsForZeroOrderId() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.ZeroOrderId.selector));
        VM.prank(payer);
        escrow.lock(bytes32(0), payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW);
    }

    function test_lock_revertsWhenOrderHeld() public {
        _lock(ORDER);
        _expectOrderExists(ORDER, IHoldfastEscrow.Status.Held);
    }

    function test_lock_revertsWhenOrderDelivered() public {
        _lockAndDeliver(ORDER);
        _expectOrderExists(ORDER, IHoldfastEscrow.Status.Delivered);
    }

    function test_lock_revertsWhenOrderFrozen() public {
        _lock(ORDER);
        _freeze(ORDER, payee);
        _expectOrderExists(ORDER, IHoldfastEscrow.Status.Frozen);
    }

    function test_lock_revertsWhenOrderSettled() public {
        _lock(ORDER);
        VM.prank(payer);
        escrow.release(ORDER, AMOUNT);
        _expectOrderExists(ORDER, IHoldfastEscrow.Status.Settled);
    }

    function test_lock_revertsWhenAnotherPayerReusesOrderId() public {
        _lock(ORDER);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.OrderExists.selector, ORDER, IHoldfastEscrow.Status.Held)
        );
        VM.prank(stranger);
        escrow.lock(ORDER, payee, 1, address(0), deliverBy, 0);
    }

    function _expectOrderExists(bytes32 orderId, IHoldfastEscrow.Status status) private {
        bytes32 before = _orderHash(orderId);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.OrderExists.selector, orderId, status));
        VM.prank(payer);
        escrow.lock(orderId, payee, AMOUNT, arbiter, deliverBy + 1 days, DISPUTE_WINDOW);
        assertEq(_orderHash(orderId), before, "order unchanged");
    }

    // ------------------------------------------------------------------ payee and arbiter

    function test_lock_revertsForZeroPayee() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidPayee.selector, address(0)));
        VM.prank(payer);
        escrow.lock(ORDER, address(0), AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW);
    }

    function test_lock_revertsWhenPayeeIsPayer() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidPayee.selector, payer));
        VM.prank(payer);
        escrow.lock(ORDER, payer, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW);
    }

    function test_lock_revertsWhenArbiterIsPayer() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidArbiter.selector, payer));
        VM.prank(payer);
        escrow.lock(ORDER, payee, AMOUNT, payer, deliverBy, DISPUTE_WINDOW);
    }

    function test_lock_revertsWhenArbiterIsPayee() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidArbiter.selector, payee));
        VM.prank(payer);
        escrow.lock(ORDER, payee, AMOUNT, payee, deliverBy, DISPUTE_WINDOW);
    }

    /// @dev Formerly a known issue: with the escrow as payee every release "succeeded" as a self-transfer, so
    ///      the funds stayed in the escrow, owed to no order and no credit, and nobody could ever move them.
    function test_lock_revertsWhenPayeeIsEscrow() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidPayee.selector, address(escrow)));
        VM.prank(payer);
        escrow.lock(ORDER, address(escrow), AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW);
        _assertStatus(ORDER, IHoldfastEscrow.Status.None);
        assertEq(usdc.balanceOf(payer), FUNDS, "payer balance");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow balance");
    }

    function test_lock_revertsWhenPayeeIsEscrowWithoutArbiter() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidPayee.selector, address(escrow)));
        VM.prank(payer);
        escrow.lock(ORDER, address(escrow), AMOUNT, address(0), deliverBy, DISPUTE_WINDOW);
    }

    /// @dev The escrow cannot call resolve, so an order it arbitrates could only ever settle by timeout.
    function test_lock_revertsWhenArbiterIsEscrow() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidArbiter.selector, address(escrow)));
        VM.prank(payer);
        escrow.lock(ORDER, payee, AMOUNT, address(escrow), deliverBy, DISPUTE_WINDOW);
        _assertStatus(ORDER, IHoldfastEscrow.Status.None);
        assertEq(usdc.balanceOf(payer), FUNDS, "payer balance");
    }

    function test_lock_storesHasArbiter() public {
        _lock(ORDER);
        _lockNoArbiter(ORDER_2);
        assertTrue(_order(ORDER).hasArbiter, "with arbiter");
        assertFalse(_order(ORDER_2).hasArbiter, "without arbiter");
    }

    // ------------------------------------------------------------------ amount

    function test_lock_revertsForZeroAmount() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidAmount.selector, 0));
        VM.prank(payer);
        escrow.lock(ORDER, payee, 0, arbiter, deliverBy, DISPUTE_WINDOW);
    }

    function test_lock_revertsForAmountAboveUint96() public {
        uint256 amount = uint256(type(uint96).max) + 1;
        usdc.mint(payer, amount);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidAmount.selector, amount));
        VM.prank(payer);
        escrow.lock(ORDER, payee, amount, arbiter, deliverBy, DISPUTE_WINDOW);
    }

    function testFuzz_lock_revertsForAnyAmountAboveUint96(uint256 amount) public {
        amount = bound(amount, uint256(type(uint96).max) + 1, type(uint256).max);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidAmount.selector, amount));
        VM.prank(payer);
        escrow.lock(ORDER, payee, amount, arbiter, deliverBy, DISPUTE_WINDOW);
    }

    // ------------------------------------------------------------------ deliverBy

    function test_lock_revertsWhenDeliverByIsNow() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidDeliverBy.selector, START, START));
        VM.prank(payer);
        // forge-lint: disable-next-line(unsafe-typecast)
        escrow.lock(ORDER, payee, AMOUNT, arbiter, uint64(START), DISPUTE_WINDOW);
    }

    function test_lock_revertsWhenDeliverByIsInThePast() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidDeliverBy.selector, START - 1, START));
        VM.prank(payer);
        // forge-lint: disable-next-line(unsafe-typecast)
        escrow.lock(ORDER, payee, AMOUNT, arbiter, uint64(START - 1), DISPUTE_WINDOW);
    }

    function test_lock_revertsForZeroDeliverBy() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidDeliverBy.selector, 0, START));
        VM.prank(payer);
        escrow.lock(ORDER, payee, AMOUNT, arbiter, 0, DISPUTE_WINDOW);
    }

    function test_lock_revertsWhenDeliverByAboveUint40() public {
        uint64 tooLate = uint64(type(uint40).max) + 1;
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidDeliverBy.selector, tooLate, START));
        VM.prank(payer);
        escrow.lock(ORDER, payee, AMOUNT, arbiter, tooLate, DISPUTE_WINDOW);
    }

    function test_lock_revertsForDeliverByOneAfterLatest() public {
        uint64 tooLate = uint64(type(uint40).max - DISPUTE_WINDOW - 30 days) + 1;
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidDeliverBy.selector, tooLate, START));
        VM.prank(payer);
        escrow.lock(ORDER, payee, AMOUNT, arbiter, tooLate, DISPUTE_WINDOW);
        _assertStatus(ORDER, IHoldfastEscrow.Status.None);
    }

    function test_lock_revertsForDeliverByAtUint40Max() public {
        uint64 tooLate = type(uint40).max;
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidDeliverBy.selector, tooLate, START));
        VM.prank(payer);
        escrow.lock(ORDER, payee, AMOUNT, arbiter, tooLate, 0);
    }

    function test_lock_revertsForDeliverByOneAfterLatestWithZeroDisputeWindow() public {
        uint64 tooLate = uint64(type(uint40).max - 30 days) + 1;
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidDeliverBy.selector, tooLate, START));
        VM.prank(payer);
        escrow.lock(ORDER, payee, AMOUNT, arbiter, tooLate, 0);
    }

    function test_lock_revertsForDeliverByOneAfterLatestWithMaxDisputeWindow() public {
        uint64 tooLate = uint64(type(uint40).max - uint256(type(uint32).max) - 30 days) + 1;
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidDeliverBy.selector, tooLate, START));
        VM.prank(payer);
        escrow.lock(ORDER, payee, AMOUNT, arbiter, tooLate, type(uint32).max);
    }

    /// @dev The bound applies whether or not the order has an arbiter (without one it can never be frozen,
    ///      but the rule is one simple bound on the terms).
    function test_lock_revertsForDeliverByOneAfterLatestWithoutArbiter() public {
        uint64 tooLate = _maxDeliverBy(DISPUTE_WINDOW) + 1;
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidDeliverBy.selector, tooLate, START));
        VM.prank(payer);
        escrow.lock(ORDER, payee, AMOUNT, address(0), tooLate, DISPUTE_WINDOW);
    }

    // ------------------------------------------------------------------ uint40 deadlines (formerly known issues)

    /// @dev Formerly a known issue: lock accepted deliverBy up to 2^40-1, and deliver, computing
    ///      `uint40(now) + disputeWindow`, then panicked (0x11) when releasableAt exceeded 2^40-1, so the payee
    ///      could not deliver and the order could only expire into a refund. Such terms are now rejected, and
    ///      at the latest accepted deliverBy the payee can deliver at the last second.
    function test_lock_rejectsTermsWhoseReleasableAtWouldExceedUint40() public {
        uint64 lateDeliverBy = type(uint40).max - 1 days; // the payee would deliver within deliverBy
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidDeliverBy.selector, lateDeliverBy, START));
        VM.prank(payer);
        escrow.lock(ORDER, payee, AMOUNT, arbiter, lateDeliverBy, DISPUTE_WINDOW);

        Terms memory t = _terms(ORDER);
        t.deliverBy = _maxDeliverBy(DISPUTE_WINDOW);
        _lock(t);
        VM.warp(t.deliverBy);
        _deliver(ORDER);
        _assertOrder(
            ORDER,
            payer,
            payee,
            AMOUNT,
            uint256(t.deliverBy) + DISPUTE_WINDOW,
            DISPUTE_WINDOW,
            IHoldfastEscrow.Status.Delivered,
            true,
            arbiter
        );
    }

    /// @dev Formerly a known issue: freeze stores `uint40(now + FREEZE_TIMEOUT)`, which wrapped when now was
    ///      within 30 days of 2^40-1, so timeoutAt landed in 1970 and anyone could resolveByTimeout at once.
    ///      Such terms are now rejected; at the latest accepted terms the last possible freeze (a Delivered
    ///      order, one second before releasableAt) times out exactly at 2^40-1, without wrapping.
    function test_lock_rejectsTermsWhoseFreezeTimeoutWouldWrap() public {
        uint64 lateDeliverBy = type(uint40).max - 1 days; // a freeze at deliverBy would time out past 2^40-1
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidDeliverBy.selector, lateDeliverBy, START));
        VM.prank(payer);
        escrow.lock(ORDER, payee, AMOUNT, arbiter, lateDeliverBy, 0);

        Terms memory t = _terms(ORDER);
        t.deliverBy = _maxDeliverBy(DISPUTE_WINDOW);
        _lock(t);
        VM.warp(t.deliverBy);
        _deliver(ORDER);
        uint256 lastFreeze = uint256(t.deliverBy) + DISPUTE_WINDOW - 1;
        VM.warp(lastFreeze);
        _freeze(ORDER, payer);
        assertEq(_order(ORDER).deadline, lastFreeze + FREEZE_TIMEOUT, "timeoutAt");
        assertEq(_order(ORDER).deadline, type(uint40).max - 1, "timeoutAt fits uint40");
        VM.expectRevert(
            abi.encodeWithSelector(
                IHoldfastEscrow.ArbiterTimeoutNotReached.selector, ORDER, lastFreeze + FREEZE_TIMEOUT
            )
        );
        escrow.resolveByTimeout(ORDER);
        VM.warp(lastFreeze + FREEZE_TIMEOUT);
        escrow.resolveByTimeout(ORDER);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee paid at the timeout");
    }

    /// @dev Zero dispute window, latest deliverBy: a payee freeze at deliverBy times out exactly at 2^40-1.
    function test_lock_latestTermsFreezeTimeoutIsUint40Max() public {
        Terms memory t = _terms(ORDER);
        t.disputeWindow = 0;
        t.deliverBy = _maxDeliverBy(0);
        _lock(t);
        VM.warp(t.deliverBy);
        _freeze(ORDER, payee);
        assertEq(_order(ORDER).deadline, type(uint40).max, "timeoutAt");
        VM.warp(type(uint40).max - 1);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.ArbiterTimeoutNotReached.selector, ORDER, type(uint40).max)
        );
        escrow.resolveByTimeout(ORDER);
        VM.warp(type(uint40).max);
        escrow.resolveByTimeout(ORDER);
        assertEq(usdc.balanceOf(payer), FUNDS, "payer refunded at the timeout");
    }

    function testFuzz_lock_revertsForDeliverByNotInTheFuture(uint64 deliverBy_) public {
        deliverBy_ = uint64(bound(deliverBy_, 0, START));
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidDeliverBy.selector, deliverBy_, START));
        VM.prank(payer);
        escrow.lock(ORDER, payee, AMOUNT, arbiter, deliverBy_, DISPUTE_WINDOW);
    }

    function testFuzz_lock_revertsForDeliverByBeyondUint40(uint64 deliverBy_) public {
        deliverBy_ = uint64(bound(deliverBy_, uint256(type(uint40).max) + 1, type(uint64).max));
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidDeliverBy.selector, deliverBy_, START));
        VM.prank(payer);
        escrow.lock(ORDER, payee, AMOUNT, arbiter, deliverBy_, DISPUTE_WINDOW);
    }

    function testFuzz_lock_revertsWhenDeadlinesWouldExceedUint40(
        uint64 deliverBy_,
        uint32 disputeWindow,
        bool withArbiter
    ) public {
        deliverBy_ = uint64(bound(deliverBy_, uint256(_maxDeliverBy(disputeWindow)) + 1, type(uint64).max));
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidDeliverBy.selector, deliverBy_, START));
        VM.prank(payer);
        escrow.lock(ORDER, payee, AMOUNT, withArbiter ? arbiter : address(0), deliverBy_, disputeWindow);
    }

    function testFuzz_lock_acceptsLatestDeliverByForAnyDisputeWindow(uint32 disputeWindow) public {
        Terms memory t = _terms(ORDER);
        t.disputeWindow = disputeWindow;
        t.deliverBy = _maxDeliverBy(disputeWindow);
        _lock(t);
        assertEq(uint256(t.deliverBy) + disputeWindow + FREEZE_TIMEOUT, type(uint40).max, "exact bound");
        // The payee can deliver at the last second, and releasableAt fits uint40.
        VM.warp(t.deliverBy);
        _deliver(ORDER);
        assertEq(_order(ORDER).deadline, uint256(t.deliverBy) + disputeWindow, "releasableAt");
    }

    // ------------------------------------------------------------------ check order

    function test_lock_checksOrderIdFirst() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.ZeroOrderId.selector));
        VM.prank(payer);
        escrow.lock(bytes32(0), address(0), 0, payer, 0, 0);
    }

    function test_lock_checksExistenceBeforeTerms() public {
        _lock(ORDER);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.OrderExists.selector, ORDER, IHoldfastEscrow.Status.Held)
        );
        VM.prank(payer);
        escrow.lock(ORDER, address(0), 0, payer, 0, 0);
    }

    function test_lock_checksPayeeBeforeArbiter() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidPayee.selector, payer));
        VM.prank(payer);
        escrow.lock(ORDER, payer, 0, payer, 0, 0);
    }

    function test_lock_checksEscrowAsPayeeBeforeArbiter() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidPayee.selector, address(escrow)));
        VM.prank(payer);
        escrow.lock(ORDER, address(escrow), 0, address(escrow), 0, 0);
    }

    function test_lock_checksArbiterBeforeAmount() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidArbiter.selector, payee));
        VM.prank(payer);
        escrow.lock(ORDER, payee, 0, payee, 0, 0);
    }

    function test_lock_checksEscrowAsArbiterBeforeAmount() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidArbiter.selector, address(escrow)));
        VM.prank(payer);
        escrow.lock(ORDER, payee, 0, address(escrow), 0, 0);
    }

    function test_lock_checksAmountBeforeDeliverByBound() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidAmount.selector, 0));
        VM.prank(payer);
        escrow.lock(ORDER, payee, 0, arbiter, type(uint64).max, type(uint32).max);
    }

    function test_lock_checksAmountBeforeDeliverBy() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidAmount.selector, 0));
        VM.prank(payer);
        escrow.lock(ORDER, payee, 0, arbiter, 0, 0);
    }

    // ------------------------------------------------------------------ token failures

    function test_lock_revertsWithoutAllowance() public {
        usdc.mint(arbiter, AMOUNT);
        VM.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(escrow), 0, AMOUNT)
        );
        VM.prank(arbiter);
        escrow.lock(ORDER, payee, AMOUNT, address(0), deliverBy, DISPUTE_WINDOW);
        _assertStatus(ORDER, IHoldfastEscrow.Status.None);
    }

    function test_lock_revertsWithInsufficientAllowance() public {
        VM.prank(payer);
        usdc.approve(address(escrow), AMOUNT - 1);
        VM.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(escrow), AMOUNT - 1, AMOUNT
            )
        );
        _lock(ORDER);
    }

    function test_lock_revertsWithInsufficientBalance() public {
        address poor = makeAddr("poor");
        usdc.mint(poor, AMOUNT - 1);
        VM.prank(poor);
        usdc.approve(address(escrow), type(uint256).max);
        VM.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, poor, AMOUNT - 1, AMOUNT)
        );
        VM.prank(poor);
        escrow.lock(ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW);
    }

    function test_lock_revertsWhenPayerIsBlacklisted() public {
        usdc.blacklist(payer);
        VM.expectRevert(abi.encodeWithSelector(MockUSDC.AccountBlacklisted.selector, payer));
        _lock(ORDER);
        _assertStatus(ORDER, IHoldfastEscrow.Status.None);
        assertEq(usdc.balanceOf(payer), FUNDS, "payer balance");
    }

    function test_lock_revertsWhenEscrowIsBlacklisted() public {
        usdc.blacklist(address(escrow));
        VM.expectRevert(abi.encodeWithSelector(MockUSDC.AccountBlacklisted.selector, address(escrow)));
        _lock(ORDER);
    }

    // ------------------------------------------------------------------ fuzz

    function testFuzz_lock_storesAnyValidTerms(
        bytes32 orderId,
        uint256 amount,
        bool withArbiter,
        uint64 deliverBy_,
        uint32 disputeWindow
    ) public {
        VM.assume(orderId != bytes32(0));
        amount = bound(amount, 1, type(uint96).max);
        deliverBy_ = uint64(bound(deliverBy_, START + 1, _maxDeliverBy(disputeWindow)));
        address arb = withArbiter ? arbiter : address(0);
        usdc.mint(payer, amount);
        uint256 payerBefore = usdc.balanceOf(payer);

        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Locked(
            orderId, payer, payee, arb, amount, deliverBy_, disputeWindow, IHoldfastEscrow.Status.Held
        );
        VM.prank(payer);
        escrow.lock(orderId, payee, amount, arb, deliverBy_, disputeWindow);

        _assertOrder(orderId, payer, payee, amount, deliverBy_, disputeWindow, IHoldfastEscrow.Status.Held, false, arb);
        assertEq(usdc.balanceOf(payer), payerBefore - amount, "payer balance");
        assertEq(usdc.balanceOf(address(escrow)), amount, "escrow balance");
    }

    function testFuzz_lock_anyPayerPayeeArbiterTriple(address payer_, address payee_, address arbiter_) public {
        VM.assume(payer_ != address(0) && payer_ != address(escrow) && payer_ != address(usdc));
        VM.assume(payee_ != address(0) && payee_ != payer_ && payee_ != address(escrow));
        VM.assume(arbiter_ != payer_ && arbiter_ != payee_ && arbiter_ != address(escrow));
        usdc.mint(payer_, AMOUNT);
        VM.prank(payer_);
        usdc.approve(address(escrow), AMOUNT);
        VM.prank(payer_);
        escrow.lock(ORDER, payee_, AMOUNT, arbiter_, deliverBy, DISPUTE_WINDOW);
        _assertOrder(
            ORDER, payer_, payee_, AMOUNT, deliverBy, DISPUTE_WINDOW, IHoldfastEscrow.Status.Held, false, arbiter_
        );
    }

    function testFuzz_lock_revertsForEscrowAsPayeeOrArbiter(address other, bool asPayee) public {
        VM.assume(other != address(0) && other != payer && other != address(escrow));
        address payee_ = asPayee ? address(escrow) : other;
        address arbiter_ = asPayee ? other : address(escrow);
        VM.expectRevert(
            asPayee
                ? abi.encodeWithSelector(IHoldfastEscrow.InvalidPayee.selector, address(escrow))
                : abi.encodeWithSelector(IHoldfastEscrow.InvalidArbiter.selector, address(escrow))
        );
        VM.prank(payer);
        escrow.lock(ORDER, payee_, AMOUNT, arbiter_, deliverBy, DISPUTE_WINDOW);
    }
}
