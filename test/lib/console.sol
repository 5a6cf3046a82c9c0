// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title console
/// @notice The few forge console.log overloads the tests use (printed with -vv and above).
library console {
    address private constant CONSOLE = 0x000000000000000000636F6e736F6c652e6c6f67;

    function _send(bytes memory payload) private view {
        // A view wrapper around a call to the console address, which has no code and never reverts.
        function(bytes memory) internal view viewSend;
        function(bytes memory) internal sendFn = _sendNonView;
        assembly ("memory-safe") {
            viewSend := sendFn
        }
        viewSend(payload);
    }

    function _sendNonView(bytes memory payload) private {
        (bool ok,) = CONSOLE.call(payload);
        ok;
    }

    function log(string memory message) internal view {
        _send(abi.encodeWithSignature("log(string)", message));
    }

    function log(string memory message, uint256 value) internal view {
        _send(abi.encodeWithSignature("log(string,uint256)", message, value));
    }

    function log(string memory message, uint256 a, uint256 b) internal view {
        _send(abi.encodeWithSignature("log(string,uint256,uint256)", message, a, b));
    }
}
