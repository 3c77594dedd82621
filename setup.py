import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"', (HERE / "paramiko" / "_version.py").read_text(), re.M
).group(1)

TEST_REQUIRES = [
    "pytest>=7",
    "pytest-timeout>=2.1",
    "mock>=4",
    "hypothesis>=6",
    "ruff>=0.4",
    "jinja2>=3",
]

setup(
    name="fabric-gateway",
    version=VERSION,
    description=(
        "Python 3 fork of Paramiko and Fabric 1.x with first-class SSH gateways "
        "(bastions, jump hosts)"
    ),
    long_description=(HERE / "README.rst").read_text(encoding="utf-8"),
    long_description_content_type="text/x-rst",
    license="LGPL-2.1-or-later AND BSD-2-Clause",
    python_requires=">=3.9",
    packages=find_packages(include=["paramiko", "paramiko.*", "fabric", "fabric.*"]),
    install_requires=["cryptography>=42", "bcrypt>=4"],
    extras_require={"test": TEST_REQUIRES},
    entry_points={"console_scripts": ["fab = fabric.main:run"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Operating System :: POSIX",
        "Topic :: System :: Networking",
    ],
)
