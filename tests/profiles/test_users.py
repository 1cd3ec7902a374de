import numpy as np

from shoprec.profiles.users import UserProfiles, band_label, price_band

DAY = 86400.0


def _profiles(tmp_path=None):
    category = np.array(["Earbuds", "Earbuds", "Serum", "Shoes"])
    brand = np.array(["Sonic", "Beat", "Glow", "Run"])
    price = np.array([30.0, 60.0, 20.0, np.nan])
    vectors = np.eye(4, dtype=np.float32)
    # user 0: mostly earbuds recently; one old serum purchase. user 1: one shoe view long ago.
    users = np.array([0, 0, 0, 0, 1])
    items = np.array([0, 1, 0, 2, 3])
    weights = np.array([1, 1, 5, 5, 1], np.float32)
    times = np.array([99, 99.5, 100, 10, 1]) * DAY
    return UserProfiles.build(["u0", "u1"], users, items, weights, times, category, brand, price, vectors, now=100 * DAY)


def test_affinities_are_time_decayed_and_normalised():
    p = _profiles()
    top = p.top(0, "category")
    assert top[0][0] == "Earbuds" and top[0][1] > 0.9  # the 90-day-old serum purchase has decayed
    assert abs(sum(w for _, w in top) - 1.0) < 1e-3
    assert p.top(0, "brand")[0][0] == "Sonic"
    assert p.get("u0")["price_bands"][0][0] == "25-50"
    assert p.get("u0")["lifecycle"] == "active"
    assert p.get("u1")["lifecycle"] == "new"  # fewer than 3 events
    assert p.get("nobody")["interactions"] == 0


def test_interest_vector_and_affinity_lookup():
    p = _profiles()
    assert np.argmax(p.vectors[0].astype(np.float32)) == 0
    aff = p.affinity(0, "category", np.array(["Earbuds", "Shoes", "Unknown"]))
    assert aff[0] > 0.9 and aff[1] == 0 and aff[2] == 0


def test_price_bands():
    assert price_band(np.array([5, 10, 49.9, 2000, np.nan])).tolist() == [0, 1, 2, 7, -1]
    assert band_label(1) == "10-25" and band_label(7) == "1000+"


def test_forget_and_round_trip(tmp_path):
    p = _profiles()
    p.save(tmp_path / "p")
    q = UserProfiles.load(tmp_path / "p")
    assert q.get("u0") == p.get("u0")
    q.forget("u0")
    assert q.get("u0")["interactions"] == 0 and q.affinities["category"].getrow(0).nnz == 0
