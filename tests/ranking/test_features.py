import numpy as np

from shoprec.ranking.features import Contributions


def test_contributions_per_item_and_per_generator():
    c = Contributions()
    c.add("als", np.array([4, 2]), np.array([0.5, 0.25], np.float32))
    c.add("sasrec", np.array([2, 9]), np.array([0.125, 0.0625], np.float32))
    assert c.generators() == ["als", "sasrec"]
    assert c.get(2) == {"als": 0.25, "sasrec": 0.125}
    assert c.get(4) == {"als": 0.5}
    assert c.get(7) == {} and c.get(7, {"none": 0.0}) == {"none": 0.0}
    assert c.column("sasrec", [4, 2, 9]).tolist() == [0.0, 0.125, 0.0625]
    assert c.column("unknown", [4]).tolist() == [0.0]
