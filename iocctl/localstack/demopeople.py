"""The demo's people and notification rules: Dĩ An's and Đông Hòa's rosters, so the flood story sends e-mail.

`ioc up` applies the province's IOCSites with these added to the two sites of SCENARIOS.md's scenario 1
(`operators.province.render(overlays=DEMO_PEOPLE)`); the stream workers' notifier sends to the stack's local
mailbox (iocctl/localstack/mailbox.py). Addresses are on `example.vn`-style reserved names: nobody real.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["DEMO_PEOPLE"]

_CITIZENS: Final = {"name": "nguoi-dan", "events": ["report-state"], "toReporters": True}

DEMO_PEOPLE: Final[dict[str, dict[str, Any]]] = {
    # Phường Đông Hòa: its on-duty officer is told what opens in the ward; its citizens of their reports.
    "25957": {
        "roster": [
            {"name": "Trần Thị Trực", "email": "truc.ban@donghoa.example", "roles": ["on-duty"], "team": "dong-hoa"},
            {"name": "Lê Văn Hiện", "email": "hien.le@donghoa.example", "roles": ["officer"], "team": "dong-hoa"},
        ],
        "notifications": {
            "rules": [
                {
                    "name": "phuong-truc-ban",
                    "events": ["opened", "sla-warning", "assigned", "reopened"],
                    "minSeverity": "medium",
                    "toRoles": ["on-duty"],
                    "toAssignee": True,
                },
                _CITIZENS,
            ],
            "quietHours": {"start": "22:00", "end": "06:00", "minSeverity": "high"},
            "slaWarningMinutes": 10,
        },
    },
    # Thành phố Dĩ An: its on-duty officer and lead hear of escalations and breaches; its officers of assignments.
    "724": {
        "roster": [
            {"name": "Nguyễn Văn Điều", "email": "truc.ban@dian.example", "roles": ["on-duty"], "team": "dieu-hanh"},
            {"name": "Phạm Thị Lãnh", "email": "lanh.dao@dian.example", "roles": ["lead"], "team": "dieu-hanh"},
            {
                "name": "Lê Văn Hiện",
                "email": "hien.le@donghoa.example",
                "roles": ["officer"],
                "team": "dong-hoa",
                "unit": "25957",
            },
        ],
        "notifications": {
            "rules": [
                {
                    "name": "quan-truc-ban",
                    "events": ["opened", "escalated", "sla-breached", "resolved"],
                    "minSeverity": "high",
                    "toRoles": ["on-duty"],
                    "toAssignee": True,
                },
                {"name": "lanh-dao", "events": ["escalated", "sla-breached"], "toRoles": ["lead"], "digest": True},
                {"name": "giao-viec", "events": ["assigned"], "toAssignee": True},
                _CITIZENS,
            ],
            "digestMinutes": 60,
        },
    },
}
