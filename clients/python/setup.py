"""Generates the gRPC stubs from the repository's proto/ folder when the package is built.

The messages and services of ``voucherledger.v1`` and ``voucherledger.event.v1`` are compiled by
grpcio-tools into the build folder, so the wheel holds them as the top-level package
``voucherledger`` and the repository holds none of them. ``google/rpc/status.proto`` is only
on the include path: its Python module comes from googleapis-common-protos.

The proto folder is ``../../proto`` (pip builds a local folder in place), or
``VOUCHERLEDGER_PROTO_DIR``.
"""

import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def proto_dir() -> Path:
    configured = os.environ.get("VOUCHERLEDGER_PROTO_DIR")
    folder = Path(configured) if configured else HERE.parent.parent / "proto"
    if not (folder / "voucherledger" / "v1" / "ledger.proto").is_file():
        raise SystemExit(
            f"voucherledger-client: no voucherledger/v1/ledger.proto under {folder}; "
            "build from the repository or set VOUCHERLEDGER_PROTO_DIR"
        )
    return folder


class BuildWithStubs(build_py):
    def run(self):
        super().run()
        self.generate(Path(self.build_lib))

    def generate(self, out: Path) -> None:
        import grpc_tools
        from grpc_tools import protoc

        protos = proto_dir()
        sources = sorted(
            str(path.relative_to(protos))
            for path in (protos / "voucherledger").rglob("*.proto")
        )
        well_known = Path(grpc_tools.__file__).parent / "_proto"
        out.mkdir(parents=True, exist_ok=True)
        arguments = [
            "grpc_tools.protoc",
            f"--proto_path={protos}",
            f"--proto_path={well_known}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *sources,
        ]
        if protoc.main(arguments) != 0:
            raise SystemExit(f"voucherledger-client: protoc failed on {sources}")
        # Regular packages, so that tools and type checkers find the modules.
        for folder in (out / "voucherledger").rglob("*"):
            if folder.is_dir():
                (folder / "__init__.py").touch()
        (out / "voucherledger" / "__init__.py").touch()


setup(cmdclass={"build_py": BuildWithStubs})
