import pytest
from service_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    SERVICE = "inventory"


def test_quorum_replicas_default_to_the_brokers_own_choice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("QUORUM_REPLICAS", raising=False)
    assert Settings().quorum_replicas is None
    monkeypatch.setenv("QUORUM_REPLICAS", "")  # set but empty, as compose files leave it
    assert Settings().quorum_replicas is None


def test_quorum_replicas_come_from_the_environment_and_are_positive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QUORUM_REPLICAS", "3")
    assert Settings().quorum_replicas == 3
    for bad in ("0", "-1", "three"):
        monkeypatch.setenv("QUORUM_REPLICAS", bad)
        with pytest.raises(ValueError, match="quorum_replicas"):
            Settings()
