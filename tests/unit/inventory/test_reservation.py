"""A reservation's life: which transitions happen, repeat harmlessly, or contradict."""

import uuid

import pytest
from inventory_service.domain import Line, Reservation, ReservationConflict, ReservationStatus

S = ReservationStatus


def reservation(status: ReservationStatus) -> Reservation:
    return Reservation(uuid.uuid4(), status, (Line("A", 1),))


def test_cancelling_a_reservation_releases_it() -> None:
    held = reservation(S.RESERVED)

    released = held.release()

    assert released.status is S.RELEASED
    assert released.lines == held.lines
    assert held.holds_stock
    assert not released.holds_stock


@pytest.mark.parametrize("status", [S.REJECTED, S.RELEASED, S.CANCELLED])
def test_cancelling_what_holds_nothing_changes_nothing(status: ReservationStatus) -> None:
    nothing_held = reservation(status)

    assert nothing_held.release() is nothing_held


def test_cancelling_a_committed_order_is_a_conflict() -> None:
    with pytest.raises(ReservationConflict, match="committed"):
        reservation(S.COMMITTED).release()


def test_confirming_a_reservation_commits_it() -> None:
    assert reservation(S.RESERVED).commit().status is S.COMMITTED


def test_confirming_twice_changes_nothing() -> None:
    committed = reservation(S.COMMITTED)

    assert committed.commit() is committed


@pytest.mark.parametrize("status", [S.REJECTED, S.RELEASED, S.CANCELLED])
def test_confirming_an_order_holding_nothing_is_a_conflict(status: ReservationStatus) -> None:
    with pytest.raises(ReservationConflict, match=str(status)):
        reservation(status).commit()


def test_tombstone_holds_nothing_and_has_no_lines() -> None:
    order_id = uuid.uuid4()

    tombstone = Reservation.tombstone(order_id)

    assert tombstone == Reservation(order_id, S.CANCELLED, ())
    assert not tombstone.holds_stock
