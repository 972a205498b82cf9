"""The block `./lab start` ends with: every place to look, logins, the first lesson."""

from labsupport.config import LabConfig
from labsupport.lessons import welcome


def status(**states):
    return {name: {"state": state} for name, state in states.items()}


def test_block_names_every_place_with_login_token_and_first_lesson():
    cfg = LabConfig()
    st = status(airflow="running", stream="running", prometheus="running", **{"pipeline-view": "running",
                                                                              "events-api": "running"})
    st["airflow"]["extra"] = {"username": "admin", "password": "s3cret"}
    url = welcome.jupyter_url({"url": "http://127.0.0.1:8888/", "token": "abc"})
    block = welcome.where_to_look(cfg, st, url)
    assert url == "http://127.0.0.1:8888/lab/tree/00_doctor_and_map.ipynb?token=abc"
    for expected in (url, "Start with lesson 00 (00_doctor_and_map.ipynb", f"{cfg.airflow}   (login admin / s3cret)",
                     f":{cfg.pipeline_view_port}", f"{cfg.prometheus}/targets", f":{cfg.spark_ui_port}",
                     "Nothing flows until a lesson starts it"):
        assert expected in block, expected
    assert "Grafana" not in block and "not running" not in block


def test_block_says_what_is_not_running_and_shows_grafana_on_compose():
    cfg = LabConfig(backend="compose")
    block = welcome.where_to_look(cfg, status(prometheus="running"), "http://x/lab")
    assert "(not running: ./lab up airflow)" in block and "(not running: ./lab up stream)" in block
    assert f"Grafana        {cfg.grafana}" in block
