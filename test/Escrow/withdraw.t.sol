// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {HoldfastEscrow} from "../../contracts/HoldfastEscrow.sol";
import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {BlacklistFalseToken} from "../mocks/BlacklistFalseToken.sol";
import {MockUSDC} from "../mocks/MockUSDC.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

contract WithdrawTest is EscrowTestBase {
    function setUp() public override {
        super.setUp();
        _lock(ORDER);
        usdc.blacklist(payee);
        VM.prank(payer);
        escrow.release(ORDER, AMOUNT); // credited to the blacklisted payee
    }

    function test_withdraw_paysCreditAfterUnBlacklist() public {
        assertEq(escrow.credits(payee), AMOUNT, "credit before");
        usdc.unBlacklist(payee);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Withdrawn(payee, AMOUNT);
        VM.prank(payee);
        escrow.withdraw(payee);
        assertEq(escrow.credits(payee), 0, "credit after");
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee balance");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow balance");
    }

    function test_withdraw_revertsWhileBlacklistedAndKeepsCredit() public {
        VM.expectRevert(abi.encodeWithSelector(MockUSDC.AccountBlacklisted.selector, payee));
        VM.prank(payee);
        escrow.withdraw(payee);
        assertEq(escrow.credits(payee), AMOUNT, "credit kept");
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT, "escrow balance");
    }

    function test_withdraw_anyoneMayTriggerFundsGoToAccount() public {
        usdc.unBlacklist(payee);
        uint256 strangerBefore = usdc.balanceOf(stranger);
        VM.prank(stranger);
        escrow.withdraw(payee);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee balance");
        assertEq(usdc.balanceOf(stranger), strangerBefore, "caller gets nothing");
    }

    function test_withdraw_revertsWithNothingToWithdraw() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NothingToWithdraw.selector, stranger));
        VM.prank(stranger);
        escrow.withdraw(stranger);
    }

    function test_withdraw_revertsForZeroAddress() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NothingToWithdraw.selector, address(0)));
        escrow.withdraw(address(0));
    }

    function test_withdraw_revertsOnSecondWithdraw() public {
        usdc.unBlacklist(payee);
        escrow.withdraw(payee);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NothingToWithdraw.selector, payee));
        escrow.withdraw(payee);
        assertEq(usdc.balanceOf(payee), AMOUNT, "paid once");
    }

    function test_withdraw_paysCreditsAccumulatedAcrossOrdersAndRoles() public {
        // payee is also the payer of another order, refunded while blacklisted
        usdc.unBlacklist(payee);
        usdc.mint(payee, AMOUNT);
        VM.prank(payee);
        usdc.approve(address(escrow), AMOUNT);
        VM.prank(payee);
        escrow.lock(ORDER_2, stranger, AMOUNT, address(0), deliverBy, DISPUTE_WINDOW);
        _lock(ORDER_3);
        usdc.blacklist(payee);
        VM.prank(stranger);
        escrow.refund(ORDER_2, AMOUNT); // refund to payee (payer of ORDER_2): credited
        VM.prank(payer);
        escrow.release(ORDER_3, 5e6); // release to payee: credited
        assertEq(escrow.credits(payee), 2 * AMOUNT + 5e6, "credit");

        usdc.unBlacklist(payee);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Withdrawn(payee, 2 * AMOUNT + 5e6);
        escrow.withdraw(payee);
        assertEq(usdc.balanceOf(payee), 2 * AMOUNT + 5e6, "payee balance");
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT - 5e6, "escrow keeps ORDER_3's remainder");
        assertEq(_remaining(ORDER_3), AMOUNT - 5e6, "ORDER_3 remaining");
    }

    function test_withdraw_doesNotTouchOtherCreditsOrOrders() public {
        _lock(ORDER_2);
        usdc.blacklist(payer);
        VM.prank(payee);
        escrow.refund(ORDER_2, 1e6); // credited to the blacklisted payer
        usdc.unBlacklist(payee);
        escrow.withdraw(payee);
        assertEq(escrow.credits(payer), 1e6, "payer credit untouched");
        assertEq(_remaining(ORDER_2), AMOUNT - 1e6, "ORDER_2 untouched");
        assertEq(usdc.balanceOf(address(escrow)), AMOUNT - 1e6 + 1e6, "escrow balance");
    }

    function test_withdraw_revertsWhileEscrowIsBlacklisted() public {
        usdc.unBlacklist(payee);
        usdc.blacklist(address(escrow));
        VM.expectRevert(abi.encodeWithSelector(MockUSDC.AccountBlacklisted.selector, address(escrow)));
        escrow.withdraw(payee);
        assertEq(escrow.credits(payee), AMOUNT, "credit kept");
    }

    function testFuzz_withdraw_paysExactCredit(uint256 amount) public {
        amount = bound(amount, 1, type(uint96).max);
        usdc.mint(payer, amount);
        Terms memory t = _terms(ORDER_2);
        t.amount = amount;
        _lock(t);
        VM.prank(payer);
        escrow.release(ORDER_2, amount);
        usdc.unBlacklist(payee);
        escrow.withdraw(payee);
        assertEq(usdc.balanceOf(payee), AMOUNT + amount, "payee balance");
        assertEq(escrow.credits(payee), 0, "credit");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow balance");
    }

    function testFuzz_withdraw_revertsForAccountWithoutCredit(address account) public {
        VM.assume(account != payee);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.NothingToWithdraw.selector, account));
        escrow.withdraw(account);
    }
}

/// @notice Withdraw on a token whose blacklist makes transfers return false instead of reverting.
contract WithdrawFalseReturningTokenTest is EscrowTestBase {
    BlacklistFalseToken internal token;
    HoldfastEscrow internal escrowF;

    function setUp() public override {
        super.setUp();
        token = new BlacklistFalseToken();
        escrowF = new HoldfastEscrow(address(token));
        _fundAndApprove(address(token), payer, address(escrowF), AMOUNT);
        VM.prank(payer);
        escrowF.lock(ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW);
        token.blacklist(payee);
        VM.expectEmit(address(escrowF));
        emit IHoldfastEscrow.PayoutDeferred(ORDER, payee, AMOUNT);
        VM.prank(payer);
        escrowF.release(ORDER, AMOUNT);
    }

    function test_withdraw_revertsWithSafeERC20FailedOperationWhileRefused() public {
        assertEq(escrowF.credits(payee), AMOUNT, "credit");
        VM.expectRevert(abi.encodeWithSelector(SafeERC20.SafeERC20FailedOperation.selector, address(token)));
        escrowF.withdraw(payee);
        assertEq(escrowF.credits(payee), AMOUNT, "credit kept");
    }

    function test_withdraw_paysOnceAccepted() public {
        token.unBlacklist(payee);
        escrowF.withdraw(payee);
        assertEq(token.balanceOf(payee), AMOUNT, "payee balance");
        assertEq(token.balanceOf(address(escrowF)), 0, "escrow balance");
    }
}
