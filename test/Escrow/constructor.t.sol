// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {HoldfastEscrow} from "../../contracts/HoldfastEscrow.sol";
import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {NoReturnToken} from "../mocks/NoReturnToken.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";

contract ConstructorTest is EscrowTestBase {
    function test_constructor_setsToken() public view {
        assertEq(escrow.token(), address(usdc), "token");
    }

    function test_constructor_freezeTimeoutIs30Days() public view {
        assertEq(escrow.FREEZE_TIMEOUT(), 30 days, "FREEZE_TIMEOUT");
    }

    function test_constructor_startsEmpty() public view {
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow balance");
        assertEq(escrow.credits(payer), 0, "credits");
        _assertOrder(ORDER, address(0), address(0), 0, 0, 0, IHoldfastEscrow.Status.None, false, address(0));
    }

    function test_constructor_acceptsAnyContractAsToken() public {
        NoReturnToken usdt = new NoReturnToken();
        HoldfastEscrow e = new HoldfastEscrow(address(usdt));
        assertEq(e.token(), address(usdt), "token");
    }

    function test_constructor_revertsForZeroToken() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidToken.selector, address(0)));
        new HoldfastEscrow(address(0));
    }

    function test_constructor_revertsForEoaToken() public {
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidToken.selector, payer));
        new HoldfastEscrow(payer);
    }

    function testFuzz_constructor_revertsForAnyAddressWithoutCode(address token) public {
        VM.assume(token.code.length == 0);
        VM.expectRevert(abi.encodeWithSelector(IHoldfastEscrow.InvalidToken.selector, token));
        new HoldfastEscrow(token);
    }
}
