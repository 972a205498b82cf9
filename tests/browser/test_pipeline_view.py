"""The Streamlit pipeline view in headless chromium shows non-zero totals."""

from labsupport.config import get_config


def test_pipeline_view_shows_landed_events(pipeline_flowing, page, artifacts):
    cfg = get_config()
    page.goto(f"http://{cfg.host}:{cfg.pipeline_view_port}/")
    value = page.locator('[data-testid="stMetric"]:has-text("Total events landed") [data-testid="stMetricValue"]')
    value.wait_for(timeout=60_000)
    page.wait_for_function(
        """() => { const el = document.querySelector('[data-testid="stMetricValue"]');
                   return el && parseFloat(el.innerText.replace(/,/g, '')) > 0; }""", timeout=60_000)
    page.screenshot(path=str(artifacts / "pipeline-view.png"), full_page=True)
    assert float(value.inner_text().replace(",", "")) >= pipeline_flowing
