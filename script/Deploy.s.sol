// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";

import {HoldfastEscrow} from "../contracts/HoldfastEscrow.sol";
import {VM} from "../test/lib/Vm.sol";
import {MockUSDC} from "../test/mocks/MockUSDC.sol";

/// @dev Cheatcodes this script needs beyond test/lib/Vm.sol (same cheatcode address, forge-std signatures).
interface VmDeployExtra {
    /// @dev Forge execution contexts, in forge-std's order.
    enum ForgeContext {
        TestGroup,
        Test,
        Coverage,
        Snapshot,
        ScriptGroup,
        ScriptDryRun,
        ScriptBroadcast,
        ScriptResume,
        Unknown
    }

    function isContext(ForgeContext context) external view returns (bool result);
    function envAddress(string calldata name, string calldata delim) external view returns (address[] memory value);
    function envOr(string calldata name, string calldata defaultValue) external view returns (string memory value);
}

/// @title Deploy
/// @notice Deploys HoldfastEscrow (and, on a devnet, a MockUSDC) and writes the deployment file.
/// @dev Use it through `script/deploy.sh`, which broadcasts this script and then writes the exact deployment
///      block (read from the escrow creation receipt) into the file: a script cannot know in which block its
///      broadcast transactions land, so this script writes `"deploymentBlock": null` and the wrapper fills it.
///
///      Environment (all optional):
///        PRIVATE_KEY      deployer key; defaults to anvil's first key, on chain 31337 only.
///        TOKEN            the ERC-20 to escrow. Unset: deploy a MockUSDC (devnets only, see ALLOW_MOCK_TOKEN).
///        ALLOW_MOCK_TOKEN true to allow deploying the MockUSDC on a chain other than 31337.
///        MINT_TO          comma-separated accounts to mint MockUSDC to; `none` to mint nothing. Default: the
///                         ten default anvil accounts when a MockUSDC is deployed on chain 31337, else nobody.
///        MINT_AMOUNT      base units (6 decimals) minted to each account; default 1,000,000 USDC.
///        DEPLOYMENT_FILE  path of the JSON written, relative to the project root and inside deployments/
///                         (forge fs_permissions); default deployments/31337.local.json on anvil (git-ignored),
///                         deployments/<chainId>.json elsewhere.
contract Deploy {
    /// @dev Chain id of anvil and other local devnets.
    uint256 internal constant DEVNET_CHAIN_ID = 31_337;
    /// @dev anvil's first default key (mnemonic "test test ... junk", index 0). Public; devnet use only.
    uint256 internal constant ANVIL_KEY_0 = 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80;
    /// @dev 1,000,000 USDC in base units.
    uint256 internal constant DEFAULT_MINT_AMOUNT = 1_000_000e6;

    VmDeployExtra internal constant VMX = VmDeployExtra(address(VM));

    /// @notice Deploys and writes the deployment file (not on a dry run without --broadcast).
    function run() external {
        uint256 chainId = block.chainid;
        bool devnet = chainId == DEVNET_CHAIN_ID;

        uint256 key = VM.envOr("PRIVATE_KEY", uint256(0));
        if (key == 0) {
            require(devnet, "Deploy: set PRIVATE_KEY (the anvil default key is only used on chain 31337)");
            key = ANVIL_KEY_0;
        }
        address deployer = VM.addr(key);

        address token = VM.envOr("TOKEN", address(0));
        bool mock = token == address(0);
        if (mock) {
            require(
                devnet || VM.envOr("ALLOW_MOCK_TOKEN", false),
                "Deploy: set TOKEN (MockUSDC, with open minting, is for devnets; ALLOW_MOCK_TOKEN=true to force)"
            );
        } else {
            require(token.code.length != 0, "Deploy: TOKEN has no code on this chain");
        }

        address[] memory mintTo = _mintRecipients(mock && devnet);
        uint256 mintAmount = VM.envOr("MINT_AMOUNT", DEFAULT_MINT_AMOUNT);

        VM.startBroadcast(key);
        if (mock) token = address(new MockUSDC());
        HoldfastEscrow escrow = new HoldfastEscrow(token);
        for (uint256 i; i < mintTo.length; ++i) {
            MockUSDC(token).mint(mintTo[i], mintAmount);
        }
        VM.stopBroadcast();

        string memory json = _deploymentJson(chainId, address(escrow), token, mock, deployer);
        string memory path = VMX.envOr("DEPLOYMENT_FILE", _defaultPath(chainId));
        if (VMX.isContext(VmDeployExtra.ForgeContext.ScriptDryRun)) {
            _log(string.concat("Dry run (no --broadcast): not writing ", path));
        } else {
            VM.createDir(string.concat(VM.projectRoot(), "/deployments"), true);
            VM.writeFile(path, json);
            _log(string.concat("Wrote ", path, " (deploymentBlock is filled in by script/deploy.sh)"));
        }
        _log(json);
    }

    function _mintRecipients(bool devnetMock) internal view returns (address[] memory recipients) {
        string memory raw = VMX.envOr("MINT_TO", "");
        if (keccak256(bytes(raw)) == keccak256("none")) return new address[](0);
        if (bytes(raw).length != 0) return VMX.envAddress("MINT_TO", ",");
        if (!devnetMock) return new address[](0);
        recipients = new address[](10);
        recipients[0] = 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266;
        recipients[1] = 0x70997970C51812dc3A010C7d01b50e0d17dc79C8;
        recipients[2] = 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC;
        recipients[3] = 0x90F79bf6EB2c4f870365E785982E1f101E93b906;
        recipients[4] = 0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65;
        recipients[5] = 0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc;
        recipients[6] = 0x976EA74026E726554dB657fA54763abd0C3a0aa9;
        recipients[7] = 0x14dC79964da2C08b23698B3D3cc7Ca32193d9955;
        recipients[8] = 0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f;
        recipients[9] = 0xa0Ee7A142d267C1f36714E4a8F75612F20a79720;
    }

    function _defaultPath(uint256 chainId) internal pure returns (string memory) {
        string memory suffix = chainId == DEVNET_CHAIN_ID ? ".local.json" : ".json";
        return string.concat("deployments/", VM.toString(chainId), suffix);
    }

    function _deploymentJson(uint256 chainId, address escrow, address token, bool mock, address deployer)
        internal
        view
        returns (string memory)
    {
        string memory tokenJson = string.concat(
            "{\"address\": \"",
            VM.toString(token),
            "\", \"symbol\": \"",
            IERC20Metadata(token).symbol(),
            "\", \"decimals\": ",
            VM.toString(uint256(IERC20Metadata(token).decimals())),
            ", \"mock\": ",
            mock ? "true" : "false",
            "}"
        );
        return string.concat(
            "{\n  \"chainId\": ",
            VM.toString(chainId),
            ",\n  \"escrow\": \"",
            VM.toString(escrow),
            "\",\n  \"deploymentBlock\": null,\n  \"deploymentTx\": null,\n  \"token\": ",
            tokenJson,
            ",\n  \"deployer\": \"",
            VM.toString(deployer),
            "\"\n}\n"
        );
    }

    function _log(string memory message) internal view {
        // console.log(string) without forge-std: a staticcall to the console address, as forge-std does.
        (bool ok,) = address(0x000000000000000000636F6e736F6c652e6c6f67)
            .staticcall(abi.encodeWithSignature("log(string)", message));
        ok;
    }
}
