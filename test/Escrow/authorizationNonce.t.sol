// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {HoldfastEscrow} from "../../contracts/HoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";

contract AuthorizationNonceTest is EscrowTestBase {
    function _nonce(Terms memory t) internal view returns (bytes32) {
        return escrow.authorizationNonce(t.orderId, t.payee, t.amount, t.arbiter, t.deliverBy, t.disputeWindow);
    }

    function _expected(address escrow_, uint256 chainId, Terms memory t) internal pure returns (bytes32) {
        return
            keccak256(
                abi.encode(escrow_, chainId, t.orderId, t.payee, t.amount, t.arbiter, t.deliverBy, t.disputeWindow)
            );
    }

    function test_authorizationNonce_matchesDocumentedEncoding() public view {
        Terms memory t = _terms(ORDER);
        assertEq(_nonce(t), _expected(address(escrow), block.chainid, t), "nonce");
    }

    function test_authorizationNonce_dependsOnChainId() public {
        Terms memory t = _terms(ORDER);
        bytes32 before = _nonce(t);
        VM.chainId(block.chainid + 1);
        bytes32 afterChange = _nonce(t);
        assertNotEq(afterChange, before, "chain id changes the nonce");
        assertEq(afterChange, _expected(address(escrow), block.chainid, t), "nonce on the new chain");
    }

    function test_authorizationNonce_dependsOnEscrowAddress() public {
        HoldfastEscrow other = new HoldfastEscrow(address(usdc));
        Terms memory t = _terms(ORDER);
        bytes32 otherNonce =
            other.authorizationNonce(t.orderId, t.payee, t.amount, t.arbiter, t.deliverBy, t.disputeWindow);
        assertNotEq(otherNonce, _nonce(t), "escrow address changes the nonce");
    }

    function test_authorizationNonce_eachTermChangesTheNonce() public view {
        Terms memory base = _terms(ORDER);
        bytes32 n = _nonce(base);
        Terms memory t;

        t = _terms(ORDER);
        t.orderId = ORDER_2;
        assertNotEq(_nonce(t), n, "orderId");
        t = _terms(ORDER);
        t.payee = stranger;
        assertNotEq(_nonce(t), n, "payee");
        t = _terms(ORDER);
        t.amount = AMOUNT + 1;
        assertNotEq(_nonce(t), n, "amount");
        t = _terms(ORDER);
        t.arbiter = address(0);
        assertNotEq(_nonce(t), n, "arbiter");
        t = _terms(ORDER);
        t.deliverBy = deliverBy + 1;
        assertNotEq(_nonce(t), n, "deliverBy");
        t = _terms(ORDER);
        t.disputeWindow = DISPUTE_WINDOW + 1;
        assertNotEq(_nonce(t), n, "disputeWindow");
    }

    function test_authorizationNonce_doesNotDependOnTimeOrCaller() public {
        Terms memory t = _terms(ORDER);
        bytes32 n = _nonce(t);
        VM.warp(START + 365 days);
        VM.prank(stranger);
        assertEq(
            escrow.authorizationNonce(t.orderId, t.payee, t.amount, t.arbiter, t.deliverBy, t.disputeWindow), n, "nonce"
        );
    }

    function test_authorizationNonce_acceptsInvalidTermsWithoutReverting() public view {
        // A pure view: it hashes whatever it is given (validation happens in lockWithAuthorization).
        assertEq(
            escrow.authorizationNonce(bytes32(0), address(0), 0, address(0), 0, 0),
            keccak256(abi.encode(address(escrow), block.chainid, bytes32(0), address(0), 0, address(0), 0, 0)),
            "nonce"
        );
    }

    function testFuzz_authorizationNonce_matchesEncoding(
        bytes32 orderId,
        address payee_,
        uint256 amount,
        address arbiter_,
        uint64 deliverBy_,
        uint32 disputeWindow,
        uint64 chainId
    ) public {
        VM.chainId(bound(chainId, 1, type(uint64).max));
        Terms memory t = Terms(orderId, payer, payee_, amount, arbiter_, deliverBy_, disputeWindow);
        assertEq(_nonce(t), _expected(address(escrow), block.chainid, t), "nonce");
    }

    function testFuzz_authorizationNonce_differentChainsDifferentNonces(uint64 chainA, uint64 chainB) public {
        chainA = uint64(bound(chainA, 1, type(uint64).max));
        chainB = uint64(bound(chainB, 1, type(uint64).max));
        VM.assume(chainA != chainB);
        Terms memory t = _terms(ORDER);
        VM.chainId(chainA);
        bytes32 a = _nonce(t);
        VM.chainId(chainB);
        assertNotEq(_nonce(t), a, "nonce");
    }

    function testFuzz_authorizationNonce_differentOrderIdsDifferentNonces(bytes32 a, bytes32 b) public view {
        VM.assume(a != b);
        Terms memory ta = _terms(a);
        Terms memory tb = _terms(b);
        assertNotEq(_nonce(ta), _nonce(tb), "nonce");
    }
}
