"""Composition of the stress service: app, routes, subscriptions, lifecycle."""

from __future__ import annotations

import functools
from typing import Any

from common.app import create_service_app, jobs_router
from common.bus import Bus
from common.db import Database
from common.service import Plumbing, Service
from stress import api, handlers, stress_repository, stress_service
from stress.api_risk import create_risk_router
from stress.api_stress import create_stress_router
from stress.context import StressContext
from stress.exports.api import create_export_router
from stress.models import metadata
from stress.pipeline import StressPipeline
from stress.reports.api import create_report_router
from stress.reports.daily import DailyReports
from stress.reports.service import JOB_TYPE as REPORT_JOB
from stress.reports.service import ReportService
from stress.repository import TimeSeriesReader
from stress.risk_service import RiskMetricsEngine
from stress.service import SnapshotService
from stress.settings import Settings
from stress.timeseries import PortfolioTimeSeries

DESCRIPTION = (
    "Daily portfolio snapshots and their exposure / performance time series, market-risk scenarios, stress "
    "tests and risk metrics (VaR, ES, volatility, beta, performance, VaR backtest). Money is USD as 2-dp "
    "strings; returns and ratios are fractions."
)


def create_service(settings: Settings, db: Database, bus: Bus, **_: Any) -> Service:
    """The stress service on `db` and `bus`."""
    plumbing = Plumbing.build("stress", db, bus, metadata)
    ctx = StressContext(settings=settings, db=db, bus=bus, plumbing=plumbing)
    app = create_service_app(
        "stress",
        title="SigmaSight stress",
        description=DESCRIPTION,
        jwt_secret=settings.resolved_jwt_secret(),
        ready_check=plumbing.ready,
    )

    app.include_router(jobs_router("stress", functools.partial(plumbing.ledger.api_job, db)))
    app.include_router(api.router(PortfolioTimeSeries(TimeSeriesReader(db), settings.default_benchmark)))
    app.include_router(create_risk_router(ctx))
    app.include_router(create_stress_router(ctx))
    reports = ReportService(plumbing, pdf_enabled=settings.reports_pdf_enabled)
    plumbing.runner.resumers[REPORT_JOB] = lambda job: reports.run
    app.include_router(create_report_router(reports))
    app.include_router(create_export_router(ctx))
    pipeline = StressPipeline(
        plumbing,
        RiskMetricsEngine(),
        market_risk=stress_service.compute_market_risk_many,
        stress_tests=stress_service.run_stress_tests_many,
    )
    snapshots = SnapshotService(plumbing, purge_hooks=[pipeline.purge, stress_repository.delete_portfolio])
    handlers.register(bus, snapshots, pipeline)
    daily_reports = DailyReports(plumbing)
    daily_reports.register(bus)
    app.state.snapshots = snapshots
    app.state.pipeline = pipeline
    app.state.context = ctx
    return Service("stress", app, plumbing, background=[daily_reports.build_forever, daily_reports.purge_forever])
