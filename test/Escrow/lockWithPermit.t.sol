// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {HoldfastEscrow} from "../../contracts/HoldfastEscrow.sol";
import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {NoReturnToken} from "../mocks/NoReturnToken.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

contract LockWithPermitTest is EscrowTestBase {
    uint256 internal permitDeadline;

    function setUp() public override {
        super.setUp();
        VM.prank(payer);
        usdc.approve(address(escrow), 0);
        permitDeadline = START + 1 hours;
    }

    function _lockWithPermit(address caller, Terms memory t, uint256 deadline, uint8 v, bytes32 r, bytes32 s) internal {
        VM.prank(caller);
        escrow.lockWithPermit(t.orderId, t.payee, t.amount, t.arbiter, t.deliverBy, t.disputeWindow, deadline, v, r, s);
    }

    function _payerPermit(uint256 value) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        return _signPermit(payerKey, address(escrow), value, usdc.nonces(payer), permitDeadline);
    }

    // ------------------------------------------------------------------ success

    function test_lockWithPermit_domainSeparatorMatchesToken() public view {
        assertEq(_domainSeparator(address(usdc)), usdc.DOMAIN_SEPARATOR(), "DOMAIN_SEPARATOR");
    }

    function test_lockWithPermit_locksWithValidPermit() public {
        (uint8 v, bytes32 r, bytes32 s) = _payerPermit(AMOUNT);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Locked(
            ORDER, payer, payee, arbiter, AMOUNT, deliverBy, DISPUTE_WINDOW, IHoldfastEscrow.Status.Held
        );
        _lockWithPermit(payer, _terms(ORDER), permitDeadline, v, r, s);
        _assertOrder(
            ORDER, payer, payee, AMOUNT, deliverBy, DISPUTE_WINDOW, IHoldfastEscrow.Status.Held, false, arbiter
        );
        assertEq(usdc.balanceOf(payer), FUNDS - AMOUNT, "payer balance");
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT, "escrow balance");
        assertEq(usdc.nonces(payer), 1, "permit nonce used");
        assertEq(usdc.allowance(payer, address(escrow)), 0, "allowance spent");
    }

    function test_lockWithPermit_acceptsPermitExactlyAtItsDeadline() public {
        permitDeadline = START;
        (uint8 v, bytes32 r, bytes32 s) = _payerPermit(AMOUNT);
        _lockWithPermit(payer, _terms(ORDER), permitDeadline, v, r, s);
        assertEq(usdc.nonces(payer), 1, "permit used");
        _assertStatus(ORDER, IHoldfastEscrow.Status.Held);
    }

    function test_lockWithPermit_locksWhenPermitWasFrontRun() public {
        (uint8 v, bytes32 r, bytes32 s) = _payerPermit(AMOUNT);
        // Someone submits the permit first: the escrow's own permit call now fails (nonce used).
        VM.prank(stranger);
        usdc.permit(payer, address(escrow), AMOUNT, permitDeadline, v, r, s);
        assertEq(usdc.allowance(payer, address(escrow)), AMOUNT, "allowance from front-run permit");

        _lockWithPermit(payer, _terms(ORDER), permitDeadline, v, r, s);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Held);
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT, "escrow balance");
        assertEq(usdc.nonces(payer), 1, "permit used once");
    }

    function test_lockWithPermit_expiredPermitFallsBackToAllowance() public {
        VM.prank(payer);
        usdc.approve(address(escrow), AMOUNT);
        (uint8 v, bytes32 r, bytes32 s) = _payerPermit(AMOUNT);
        VM.warp(permitDeadline + 1);
        Terms memory t = _terms(ORDER);
        _lockWithPermit(payer, t, permitDeadline, v, r, s);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Held);
        assertEq(usdc.nonces(payer), 0, "permit not used");
    }

    function test_lockWithPermit_garbageSignatureFallsBackToAllowance() public {
        VM.prank(payer);
        usdc.approve(address(escrow), AMOUNT);
        _lockWithPermit(payer, _terms(ORDER), permitDeadline, 0, bytes32(0), bytes32(0));
        _assertStatus(ORDER, IHoldfastEscrow.Status.Held);
    }

    function test_lockWithPermit_validPermitOverwritesLargerAllowance() public {
        // EIP-2612 sets the allowance (it does not add): a larger prior approval is replaced, then spent.
        VM.prank(payer);
        usdc.approve(address(escrow), 5 * AMOUNT);
        (uint8 v, bytes32 r, bytes32 s) = _payerPermit(AMOUNT);
        _lockWithPermit(payer, _terms(ORDER), permitDeadline, v, r, s);
        assertEq(usdc.allowance(payer, address(escrow)), 0, "allowance after");
    }

    function test_lockWithPermit_tokenWithoutPermitFallsBackToAllowance() public {
        NoReturnToken usdt = new NoReturnToken();
        HoldfastEscrow e = new HoldfastEscrow(address(usdt));
        usdt.mint(payer, AMOUNT);
        VM.prank(payer);
        usdt.approve(address(e), AMOUNT);
        VM.prank(payer);
        e.lockWithPermit(ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW, permitDeadline, 27, "r", "s");
        assertEq(usdt.balanceOf(address(e)), AMOUNT, "escrow balance");
        (IHoldfastEscrow.Order memory o,) = e.getOrder(ORDER);
        assertEq(uint256(o.status), uint256(IHoldfastEscrow.Status.Held), "status");
    }

    function test_lockWithPermit_tokenWithoutPermitAndNoAllowanceReverts() public {
        NoReturnToken usdt = new NoReturnToken();
        HoldfastEscrow e = new HoldfastEscrow(address(usdt));
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.PermitFailed.selector, ORDER, payer, 0, AMOUNT));
        VM.prank(payer);
        e.lockWithPermit(ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW, permitDeadline, 27, "r", "s");
    }

    function test_lockWithPermit_callerIsAlwaysThePayer() public {
        // A stranger submitting the payer's permit cannot lock the payer's funds: the permit is checked for
        // the caller and fails, and the stranger's own approval (set in setUp) pays for the order.
        (uint8 v, bytes32 r, bytes32 s) = _payerPermit(AMOUNT);
        _lockWithPermit(stranger, _terms(ORDER), permitDeadline, v, r, s);
        assertEq(_order(ORDER).payer, stranger, "payer is the caller");
        assertEq(usdc.balanceOf(payer), FUNDS, "payer untouched");
        assertEq(usdc.balanceOf(stranger), FUNDS - AMOUNT, "stranger paid");
        assertEq(usdc.nonces(payer), 0, "payer permit unused");
    }

    // ------------------------------------------------------------------ PermitFailed

    function test_lockWithPermit_revertsForExpiredPermitWithoutAllowance() public {
        (uint8 v, bytes32 r, bytes32 s) = _payerPermit(AMOUNT);
        VM.warp(permitDeadline + 1);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.PermitFailed.selector, ORDER, payer, 0, AMOUNT));
        _lockWithPermit(payer, _terms(ORDER), permitDeadline, v, r, s);
    }

    function test_lockWithPermit_revertsWhenAllowanceIsShort() public {
        VM.prank(payer);
        usdc.approve(address(escrow), AMOUNT - 1);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.PermitFailed.selector, ORDER, payer, AMOUNT - 1, AMOUNT));
        _lockWithPermit(payer, _terms(ORDER), permitDeadline, 0, bytes32(0), bytes32(0));
    }

    function test_lockWithPermit_revertsForPermitSignedByAnotherKey() public {
        (uint8 v, bytes32 r, bytes32 s) =
            _signPermit(strangerKey, address(escrow), AMOUNT, usdc.nonces(payer), permitDeadline);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.PermitFailed.selector, ORDER, payer, 0, AMOUNT));
        _lockWithPermit(payer, _terms(ORDER), permitDeadline, v, r, s);
    }

    function test_lockWithPermit_revertsForPermitOfAnotherValue() public {
        (uint8 v, bytes32 r, bytes32 s) = _payerPermit(AMOUNT + 1);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.PermitFailed.selector, ORDER, payer, 0, AMOUNT));
        _lockWithPermit(payer, _terms(ORDER), permitDeadline, v, r, s);
    }

    function test_lockWithPermit_revertsForPermitToAnotherSpender() public {
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(payerKey, stranger, AMOUNT, 0, permitDeadline);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.PermitFailed.selector, ORDER, payer, 0, AMOUNT));
        _lockWithPermit(payer, _terms(ORDER), permitDeadline, v, r, s);
    }

    function test_lockWithPermit_revertsForReplayedPermit() public {
        (uint8 v, bytes32 r, bytes32 s) = _payerPermit(AMOUNT);
        _lockWithPermit(payer, _terms(ORDER), permitDeadline, v, r, s);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.PermitFailed.selector, ORDER_2, payer, 0, AMOUNT));
        _lockWithPermit(payer, _terms(ORDER_2), permitDeadline, v, r, s);
    }

    // ------------------------------------------------------------------ term validation and transfer

    function test_lockWithPermit_validatesTermsBeforePermit() public {
        (uint8 v, bytes32 r, bytes32 s) = _payerPermit(AMOUNT);
        Terms memory t = _terms(ORDER);
        t.payee = payer;
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidPayee.selector, payer));
        _lockWithPermit(payer, t, permitDeadline, v, r, s);
        assertEq(usdc.nonces(payer), 0, "permit unused");
    }

    function test_lockWithPermit_validatesArbiterBeforePermit() public {
        (uint8 v, bytes32 r, bytes32 s) = _payerPermit(AMOUNT);
        Terms memory t = _terms(ORDER);
        t.arbiter = address(escrow);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidArbiter.selector, address(escrow)));
        _lockWithPermit(payer, t, permitDeadline, v, r, s);
        assertEq(usdc.nonces(payer), 0, "permit unused");
    }

    function test_lockWithPermit_validatesDeliverByBoundBeforePermit() public {
        (uint8 v, bytes32 r, bytes32 s) = _payerPermit(AMOUNT);
        Terms memory t = _terms(ORDER);
        t.deliverBy = _maxDeliverBy(t.disputeWindow) + 1;
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidDeliverBy.selector, t.deliverBy, START));
        _lockWithPermit(payer, t, permitDeadline, v, r, s);
        assertEq(usdc.nonces(payer), 0, "permit unused");
    }

    function test_lockWithPermit_revertsWhenOrderExists() public {
        (uint8 v, bytes32 r, bytes32 s) = _payerPermit(AMOUNT);
        _lockWithPermit(payer, _terms(ORDER), permitDeadline, v, r, s);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.OrderExists.selector, ORDER, IHoldfastEscrow.Status.Held)
        );
        _lockWithPermit(payer, _terms(ORDER), permitDeadline, v, r, s);
    }

    function test_lockWithPermit_revertsForZeroOrderId() public {
        (uint8 v, bytes32 r, bytes32 s) = _payerPermit(AMOUNT);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.ZeroOrderId.selector));
        _lockWithPermit(payer, _terms(bytes32(0)), permitDeadline, v, r, s);
    }

    function test_lockWithPermit_revertsWhenBalanceIsShort() public {
        address poor = VM.addr(0xBEEF);
        usdc.mint(poor, AMOUNT - 1);
        (uint8 v, bytes32 r, bytes32 s) = _signPermit(0xBEEF, address(escrow), AMOUNT, 0, permitDeadline);
        Terms memory t = _terms(ORDER);
        t.payer = poor;
        VM.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, poor, AMOUNT - 1, AMOUNT)
        );
        _lockWithPermit(poor, t, permitDeadline, v, r, s);
    }

    // ------------------------------------------------------------------ fuzz

    function testFuzz_lockWithPermit_anyAmountAndDeadline(uint256 amount, uint256 deadline) public {
        amount = bound(amount, 1, type(uint96).max);
        permitDeadline = bound(deadline, START, type(uint256).max);
        usdc.mint(payer, amount);
        (uint8 v, bytes32 r, bytes32 s) = _payerPermit(amount);
        Terms memory t = _terms(ORDER);
        t.amount = amount;
        _lockWithPermit(payer, t, permitDeadline, v, r, s);
        assertEq(_remaining(ORDER), amount, "remaining");
        assertEq(usdc.balanceOf(address(escrow)), amount, "escrow balance");
        assertEq(usdc.nonces(payer), 1, "permit used");
    }

    function testFuzz_lockWithPermit_failedPermitNeedsFullAllowance(uint256 allowance) public {
        allowance = bound(allowance, 0, 2 * AMOUNT);
        VM.prank(payer);
        usdc.approve(address(escrow), allowance);
        if (allowance < AMOUNT) {
            VM.expectRevert(
                abi.encodeWithSelector(IHoldfastEscrow.PermitFailed.selector, ORDER, payer, allowance, AMOUNT)
            );
        }
        _lockWithPermit(payer, _terms(ORDER), permitDeadline, 0, bytes32(0), bytes32(0));
        if (allowance >= AMOUNT) {
            assertEq(usdc.allowance(payer, address(escrow)), allowance - AMOUNT, "allowance left");
            _assertStatus(ORDER, IHoldfastEscrow.Status.Held);
        }
    }
}
