// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {HoldfastEscrow} from "../../contracts/HoldfastEscrow.sol";
import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {FeeOnTransferToken} from "../mocks/FeeOnTransferToken.sol";
import {NoReturnToken} from "../mocks/NoReturnToken.sol";
import {ReentrantToken} from "../mocks/ReentrantToken.sol";
import {ReturnsFalseToken} from "../mocks/ReturnsFalseToken.sol";
import {RevertingToken} from "../mocks/RevertingToken.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @notice USDT-style token: transfer/transferFrom/approve return nothing.
contract NoReturnTokenTest is EscrowTestBase {
    NoReturnToken internal usdt;
    HoldfastEscrow internal e;

    function setUp() public override {
        super.setUp();
        usdt = new NoReturnToken();
        e = new HoldfastEscrow(address(usdt));
        _fundAndApprove(address(usdt), payer, address(e), 10 * AMOUNT);
    }

    function _lockOn(bytes32 orderId) private {
        VM.prank(payer);
        e.lock(orderId, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW);
    }

    function test_noReturnToken_locks() public {
        _lockOn(ORDER);
        assertEq(usdt.balanceOf(address(e)), AMOUNT, "escrow balance");
        assertEq(usdt.balanceOf(payer), 9 * AMOUNT, "payer balance");
    }

    function test_noReturnToken_releasePaysPayee() public {
        _lockOn(ORDER);
        VM.prank(payer);
        e.release(ORDER, AMOUNT);
        assertEq(usdt.balanceOf(payee), AMOUNT, "payee balance");
        assertEq(e.credits(payee), 0, "no credit");
    }

    function test_noReturnToken_refundPaysPayer() public {
        _lockOn(ORDER);
        VM.prank(payee);
        e.refund(ORDER, AMOUNT);
        assertEq(usdt.balanceOf(payer), 10 * AMOUNT, "payer balance");
        assertEq(e.credits(payer), 0, "no credit");
    }

    function test_noReturnToken_resolveSplitPaysBoth() public {
        _lockOn(ORDER);
        VM.prank(payee);
        e.freeze(ORDER, REASON);
        VM.prank(arbiter);
        e.resolve(ORDER, 250e6);
        assertEq(usdt.balanceOf(payee), 250e6, "payee balance");
        assertEq(usdt.balanceOf(payer), 9 * AMOUNT + 750e6, "payer balance");
        assertEq(usdt.balanceOf(address(e)), 0, "escrow balance");
    }

    function test_noReturnToken_lockWithoutAllowanceBubblesTokenRevert() public {
        usdt.mint(stranger, AMOUNT);
        VM.expectRevert(bytes("NoReturnToken: allowance"));
        VM.prank(stranger);
        e.lock(ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW);
    }
}

/// @notice Token whose transfers return false instead of reverting.
contract ReturnsFalseTokenTest is EscrowTestBase {
    ReturnsFalseToken internal token;
    HoldfastEscrow internal e;

    function setUp() public override {
        super.setUp();
        token = new ReturnsFalseToken();
        e = new HoldfastEscrow(address(token));
        _fundAndApprove(address(token), payer, address(e), 10 * AMOUNT);
    }

    function test_returnsFalseToken_lockRevertsWithSafeERC20FailedOperation() public {
        VM.expectRevert(abi.encodeWithSelector(SafeERC20.SafeERC20FailedOperation.selector, address(token)));
        VM.prank(payer);
        e.lock(ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW);
        (IHoldfastEscrow.Order memory o,) = e.getOrder(ORDER);
        assertEq(uint256(o.status), uint256(IHoldfastEscrow.Status.None), "no order");
    }

    function test_returnsFalseToken_lockWithPermitRevertsWithSafeERC20FailedOperation() public {
        VM.expectRevert(abi.encodeWithSelector(SafeERC20.SafeERC20FailedOperation.selector, address(token)));
        VM.prank(payer);
        e.lockWithPermit(ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW, 0, 0, 0, 0);
    }

    function test_returnsFalseToken_refusedPayoutIsCreditedAndWithdrawableLater() public {
        token.setFail(false, false);
        VM.prank(payer);
        e.lock(ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW);
        token.setFail(true, false);

        VM.expectEmit(address(e));
        emit IHoldfastEscrow.PayoutDeferred(ORDER, payee, AMOUNT);
        VM.prank(payer);
        e.release(ORDER, AMOUNT);
        assertEq(e.credits(payee), AMOUNT, "credit");
        assertEq(token.balanceOf(payee), 0, "payee balance");

        VM.expectRevert(abi.encodeWithSelector(SafeERC20.SafeERC20FailedOperation.selector, address(token)));
        e.withdraw(payee);
        assertEq(e.credits(payee), AMOUNT, "credit kept");

        token.setFail(false, false);
        e.withdraw(payee);
        assertEq(token.balanceOf(payee), AMOUNT, "payee balance");
        assertEq(e.credits(payee), 0, "credit");
    }
}

/// @notice Token whose transfers always revert.
contract RevertingTokenTest is EscrowTestBase {
    RevertingToken internal token;
    HoldfastEscrow internal e;

    function setUp() public override {
        super.setUp();
        token = new RevertingToken();
        e = new HoldfastEscrow(address(token));
        _fundAndApprove(address(token), payer, address(e), AMOUNT);
    }

    function test_revertingToken_lockBubblesTokenError() public {
        VM.expectRevert(abi.encodeWithSelector(RevertingToken.TransfersDisabled.selector));
        VM.prank(payer);
        e.lock(ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW);
    }

    function test_revertingToken_lockWithPermitBubblesTokenError() public {
        VM.expectRevert(abi.encodeWithSelector(RevertingToken.TransfersDisabled.selector));
        VM.prank(payer);
        e.lockWithPermit(ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW, 0, 0, 0, 0);
    }
}

/// @notice Fee-on-transfer token: every deposit path rejects it with DepositMismatch.
contract FeeOnTransferTokenTest is EscrowTestBase {
    FeeOnTransferToken internal token;
    HoldfastEscrow internal e;

    function setUp() public override {
        super.setUp();
        token = new FeeOnTransferToken(100); // 1%
        e = new HoldfastEscrow(address(token));
        _fundAndApprove(address(token), payer, address(e), 10 * AMOUNT);
    }

    function test_feeOnTransfer_lockRevertsWithDepositMismatch() public {
        uint256 received = AMOUNT - token.feeOn(AMOUNT);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.DepositMismatch.selector, ORDER, AMOUNT, received));
        VM.prank(payer);
        e.lock(ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW);
        assertEq(token.balanceOf(payer), 10 * AMOUNT, "payer balance");
    }

    function test_feeOnTransfer_lockWithPermitRevertsWithDepositMismatch() public {
        // The token has no permit: the failed permit falls back to the allowance, then the deposit check.
        uint256 received = AMOUNT - token.feeOn(AMOUNT);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.DepositMismatch.selector, ORDER, AMOUNT, received));
        VM.prank(payer);
        e.lockWithPermit(ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW, 0, 0, 0, 0);
    }

    function test_feeOnTransfer_lockWithAuthorizationRevertsWithDepositMismatch() public {
        uint256 received = AMOUNT - token.feeOn(AMOUNT);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.DepositMismatch.selector, ORDER, AMOUNT, received));
        VM.prank(relayer);
        e.lockWithAuthorization(payer, ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW, 0, 0, 0, 0, 0);
    }

    function test_feeOnTransfer_zeroFeeLocks() public {
        token.setFeeBps(0);
        VM.prank(payer);
        e.lock(ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW);
        assertEq(token.balanceOf(address(e)), AMOUNT, "escrow balance");
    }

    function test_feeOnTransfer_feeRoundingToZeroLocks() public {
        // 1% of 99 base units rounds down to 0: nothing is lost, so the deposit is accepted.
        VM.prank(payer);
        e.lock(ORDER, payee, 99, arbiter, deliverBy, DISPUTE_WINDOW);
        assertEq(token.balanceOf(address(e)), 99, "escrow balance");
    }

    function testFuzz_feeOnTransfer_anyNonZeroFeeIsRejected(uint256 feeBps, uint256 amount) public {
        feeBps = bound(feeBps, 1, 10_000);
        amount = bound(amount, 1, type(uint96).max);
        token.setFeeBps(feeBps);
        token.mint(payer, amount);
        uint256 fee = token.feeOn(amount);
        if (fee != 0) {
            VM.expectRevert(
                abi.encodeWithSelector(IHoldfastEscrow.DepositMismatch.selector, ORDER, amount, amount - fee)
            );
        }
        VM.prank(payer);
        e.lock(ORDER, payee, amount, arbiter, deliverBy, DISPUTE_WINDOW);
        if (fee == 0) assertEq(token.balanceOf(address(e)), amount, "escrow balance");
    }
}

/// @notice A token that delivers more than the amount (here: a hook mints to the escrow mid-transfer).
contract InflatingDepositTest is EscrowTestBase {
    function test_inflatingDeposit_revertsWithDepositMismatch() public {
        ReentrantToken token = new ReentrantToken();
        HoldfastEscrow e = new HoldfastEscrow(address(token));
        _fundAndApprove(address(token), payer, address(e), AMOUNT);
        token.arm(address(token), abi.encodeWithSignature("mint(address,uint256)", address(e), 1), true);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.DepositMismatch.selector, ORDER, AMOUNT, AMOUNT + 1));
        VM.prank(payer);
        e.lock(ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW);
    }
}
