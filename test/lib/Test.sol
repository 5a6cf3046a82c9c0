// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {VM} from "./Vm.sol";

/// @title Test
/// @notice Minimal test base for Holdfast (there is no forge-std). Every failed check reverts with an
///         `Error(string)` that names the check, both values and the caller's message, so forge reports it.
abstract contract Test {
    uint256 private constant _UINT256_MAX = type(uint256).max;

    // ------------------------------------------------------------------ failure

    /// @notice Fail the current test with `reason`.
    function fail(string memory reason) internal pure virtual {
        revert(string.concat("Test failed: ", reason));
    }

    /// @notice Fail the current test.
    function fail() internal pure virtual {
        revert("Test failed");
    }

    function _fail(string memory what, string memory a, string memory b, string memory err) private pure {
        string memory message = string.concat(what, " failed: ", a, " vs ", b);
        if (bytes(err).length != 0) message = string.concat(message, " (", err, ")");
        revert(message);
    }

    // ------------------------------------------------------------------ booleans

    function assertTrue(bool condition) internal pure {
        if (!condition) revert("assertTrue failed");
    }

    function assertTrue(bool condition, string memory err) internal pure {
        if (!condition) revert(string.concat("assertTrue failed (", err, ")"));
    }

    function assertFalse(bool condition) internal pure {
        if (condition) revert("assertFalse failed");
    }

    function assertFalse(bool condition, string memory err) internal pure {
        if (condition) revert(string.concat("assertFalse failed (", err, ")"));
    }

    // ------------------------------------------------------------------ equality

    function assertEq(uint256 a, uint256 b) internal pure {
        assertEq(a, b, "");
    }

    function assertEq(uint256 a, uint256 b, string memory err) internal pure {
        if (a != b) _fail("assertEq(uint256)", VM.toString(a), VM.toString(b), err);
    }

    function assertEq(address a, address b) internal pure {
        assertEq(a, b, "");
    }

    function assertEq(address a, address b, string memory err) internal pure {
        if (a != b) _fail("assertEq(address)", VM.toString(a), VM.toString(b), err);
    }

    function assertEq(bytes32 a, bytes32 b) internal pure {
        assertEq(a, b, "");
    }

    function assertEq(bytes32 a, bytes32 b, string memory err) internal pure {
        if (a != b) _fail("assertEq(bytes32)", VM.toString(a), VM.toString(b), err);
    }

    function assertEq(bool a, bool b) internal pure {
        assertEq(a, b, "");
    }

    function assertEq(bool a, bool b, string memory err) internal pure {
        if (a != b) _fail("assertEq(bool)", VM.toString(a), VM.toString(b), err);
    }

    function assertEq(bytes memory a, bytes memory b) internal pure {
        assertEq(a, b, "");
    }

    function assertEq(bytes memory a, bytes memory b, string memory err) internal pure {
        if (keccak256(a) != keccak256(b)) _fail("assertEq(bytes)", VM.toString(a), VM.toString(b), err);
    }

    function assertEq(string memory a, string memory b) internal pure {
        assertEq(a, b, "");
    }

    function assertEq(string memory a, string memory b, string memory err) internal pure {
        if (keccak256(bytes(a)) != keccak256(bytes(b))) _fail("assertEq(string)", a, b, err);
    }

    function assertNotEq(uint256 a, uint256 b, string memory err) internal pure {
        if (a == b) _fail("assertNotEq(uint256)", VM.toString(a), VM.toString(b), err);
    }

    function assertNotEq(address a, address b, string memory err) internal pure {
        if (a == b) _fail("assertNotEq(address)", VM.toString(a), VM.toString(b), err);
    }

    function assertNotEq(bytes32 a, bytes32 b, string memory err) internal pure {
        if (a == b) _fail("assertNotEq(bytes32)", VM.toString(a), VM.toString(b), err);
    }

    // ------------------------------------------------------------------ ordering

    function assertGt(uint256 a, uint256 b) internal pure {
        assertGt(a, b, "");
    }

    function assertGt(uint256 a, uint256 b, string memory err) internal pure {
        if (a <= b) _fail("assertGt", VM.toString(a), VM.toString(b), err);
    }

    function assertGe(uint256 a, uint256 b) internal pure {
        assertGe(a, b, "");
    }

    function assertGe(uint256 a, uint256 b, string memory err) internal pure {
        if (a < b) _fail("assertGe", VM.toString(a), VM.toString(b), err);
    }

    function assertLt(uint256 a, uint256 b) internal pure {
        assertLt(a, b, "");
    }

    function assertLt(uint256 a, uint256 b, string memory err) internal pure {
        if (a >= b) _fail("assertLt", VM.toString(a), VM.toString(b), err);
    }

    function assertLe(uint256 a, uint256 b) internal pure {
        assertLe(a, b, "");
    }

    function assertLe(uint256 a, uint256 b, string memory err) internal pure {
        if (a > b) _fail("assertLe", VM.toString(a), VM.toString(b), err);
    }

    // ------------------------------------------------------------------ helpers

    /// @notice A deterministic address (and its key) derived from `name`, labelled with it.
    function makeAddrAndKey(string memory name) internal returns (address account, uint256 privateKey) {
        privateKey = uint256(keccak256(abi.encodePacked(name)));
        account = VM.addr(privateKey);
        VM.label(account, name);
    }

    /// @notice A deterministic address derived from `name`, labelled with it.
    function makeAddr(string memory name) internal returns (address account) {
        (account,) = makeAddrAndKey(name);
    }

    /// @notice Label `account` in traces.
    function label(address account, string memory name) internal {
        VM.label(account, name);
    }

    /// @notice Map `x` into [min, max] (forge-std's algorithm: values already in range are kept, small and
    ///         huge inputs map to the edges, so the fuzzer's edge-case dictionary still hits the bounds).
    function bound(uint256 x, uint256 min, uint256 max) internal pure virtual returns (uint256 result) {
        require(min <= max, "bound: max is less than min");
        if (x >= min && x <= max) return x;
        uint256 size = max - min + 1;
        if (x <= 3 && size > x) return min + x;
        if (x >= _UINT256_MAX - 3 && size > _UINT256_MAX - x) return max - (_UINT256_MAX - x);
        if (x > max) {
            uint256 rem = (x - max) % size;
            if (rem == 0) return max;
            result = min + rem - 1;
        } else {
            uint256 rem = (min - x) % size;
            if (rem == 0) return min;
            result = max - rem + 1;
        }
    }
}
