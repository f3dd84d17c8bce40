"""The flow tests' fixtures (functions invoked in-process against the emulator over loopback)."""

from tests.flows.conftest import call, delivery_keys, function_env, resource_group  # noqa: F401
