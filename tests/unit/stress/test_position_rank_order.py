"""`in_rank_order`: the stress step's position read aggregates unordered and rests its order on a rank."""

from __future__ import annotations

from stress.stress_repository import in_rank_order


def test_columns_follow_the_rank_when_rows_arrive_out_of_order() -> None:
    columns = {"position_id": ["c", "a", "d", "b"], "quantity": [3.0, 1.0, 4.0, 2.0]}
    out = in_rank_order(columns, [3, 1, 4, 2])
    assert out == {"position_id": ["a", "b", "c", "d"], "quantity": [1.0, 2.0, 3.0, 4.0]}


def test_rows_already_in_rank_order_are_returned_as_they_are() -> None:
    columns = {"position_id": ["a", "b", "c"], "quantity": [1.0, None, 3.0]}
    assert in_rank_order(columns, [1, 2, 3]) is columns
    assert in_rank_order({"position_id": ["a"]}, [7]) == {"position_id": ["a"]}
