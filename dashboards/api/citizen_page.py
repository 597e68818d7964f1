"""The citizen page's HTML: a form to send a report and a page to follow one, Vietnamese first. Pure.

Both pages are plain HTML with a little JavaScript that calls the site's own Open311 API (the form posts
`requests.json` with the page's client key, the follow page reads `requests/{id}.json`), so the page is one
more Open311 client and shows exactly what the API says. Built for phones first (one column, 16 px text, big
targets) and for assistive technology: every field has a label, groups have legends, results and errors
are announced (`aria-live`) and focus moves to them; the map is a convenience beside the commune list and
the coordinates, never the only way to say where. dashboards.api.routes_citizen serves them.
"""

# ruff: noqa: E501 - the page's markup and script read best a tag or a statement per line, however long

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Final

from ioc import units

__all__ = ["TEXT", "follow_page", "report_page"]

TEXT: Final[Mapping[str, Mapping[str, str]]] = {
    "vi": {
        "title": "Gửi phản ánh hiện trường",
        "follow_title": "Theo dõi phản ánh",
        "intro": "Phản ánh của bạn được chuyển tới phường, xã nơi xảy ra sự việc. Các ô có dấu * là bắt buộc.",
        "what": "Nội dung phản ánh",
        "category": "Lĩnh vực *",
        "text": "Mô tả sự việc *",
        "photo": "Ảnh chụp (không bắt buộc)",
        "where": "Địa điểm",
        "where_help": "Chạm vào bản đồ, dùng vị trí hiện tại, hoặc chọn phường/xã và ghi địa chỉ.",
        "map": "Bản đồ các phường, xã: chạm để chọn điểm",
        "locate": "Dùng vị trí của tôi",
        "lat": "Vĩ độ",
        "lon": "Kinh độ",
        "commune": "Phường/xã",
        "commune_any": "— Chọn theo điểm trên bản đồ —",
        "address": "Địa chỉ",
        "contact": "Liên hệ (không bắt buộc, để nhận thông báo)",
        "name": "Họ và tên",
        "phone": "Số điện thoại",
        "email": "Thư điện tử",
        "send": "Gửi phản ánh",
        "sending": "Đang gửi…",
        "sent": "Đã gửi phản ánh. Mã phản ánh của bạn:",
        "follow_link": "Theo dõi phản ánh này",
        "error": "Chưa gửi được:",
        "need_place": "Hãy chọn một điểm trên bản đồ hoặc chọn phường/xã.",
        "id": "Mã phản ánh",
        "look": "Xem tình trạng",
        "status": "Tình trạng",
        "answer_by": "Hạn trả lời",
        "history": "Quá trình xử lý",
        "not_found": "Không tìm thấy phản ánh với mã này.",
        "other_lang": "English",
        "new_report": "Gửi phản ánh mới",
        "photo_failed": "Không tải được ảnh:",
    },
    "en": {
        "title": "Report a problem in your area",
        "follow_title": "Follow a report",
        "intro": "Your report goes to the ward or commune where it happens. Fields marked * are required.",
        "what": "What is wrong",
        "category": "Category *",
        "text": "Description *",
        "photo": "Photo (optional)",
        "where": "Where",
        "where_help": "Tap the map, use your location, or choose the ward or commune and type the address.",
        "map": "Map of wards and communes: tap to choose a point",
        "locate": "Use my location",
        "lat": "Latitude",
        "lon": "Longitude",
        "commune": "Ward or commune",
        "commune_any": "— From the point on the map —",
        "address": "Address",
        "contact": "Contact (optional, to be told of progress)",
        "name": "Name",
        "phone": "Phone",
        "email": "E-mail",
        "send": "Send report",
        "sending": "Sending…",
        "sent": "Report sent. Your report number:",
        "follow_link": "Follow this report",
        "error": "Not sent yet:",
        "need_place": "Choose a point on the map or a ward or commune.",
        "id": "Report number",
        "look": "Show its status",
        "status": "Status",
        "answer_by": "Answer due by",
        "history": "What has happened",
        "not_found": "No report with this number.",
        "other_lang": "Tiếng Việt",
        "new_report": "Send a new report",
        "photo_failed": "The photo could not be uploaded:",
    },
}

_STYLE: Final = """
*{box-sizing:border-box}body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#f6f7f9}
main{max-width:40rem;margin:0 auto;padding:1rem}h1{font-size:1.5rem;margin:.5rem 0 1rem}
fieldset{border:1px solid #c8ccd2;border-radius:.5rem;margin:0 0 1rem;padding:.75rem;background:#fff}
legend{font-weight:600;padding:0 .25rem}label{display:block;margin:.5rem 0 .25rem;font-weight:500}
input,select,textarea,button{font:inherit;width:100%;padding:.6rem;border:1px solid #8a9099;border-radius:.4rem}
textarea{min-height:7rem}button{background:#0b5cad;color:#fff;border:0;min-height:3rem;font-weight:600;margin-top:.5rem}
button.secondary{background:#e8eef6;color:#0b3d73}:focus{outline:3px solid #f0a500;outline-offset:2px}
.row{display:flex;gap:.5rem}.row>div{flex:1}svg{width:100%;height:auto;background:#e9f1e7;border-radius:.4rem;touch-action:manipulation}
.help{color:#4a4f57;font-size:.9rem;margin:.25rem 0}.result{background:#fff;border-left:4px solid #0b5cad;padding:.75rem;margin:1rem 0}
.error{border-left-color:#b3261e}nav{text-align:right}ol{padding-left:1.25rem}
"""


def _shell(lang: str, title: str, other_href: str, body: str) -> str:
    t = TEXT[lang]
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body><main>"
        f'<nav><a href="{html.escape(other_href)}" lang="{"en" if lang == "vi" else "vi"}">{t["other_lang"]}</a></nav>'
        f"<h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )


def _map_svg(communes: Sequence[units.Unit], label: str) -> tuple[str, dict[str, float]]:
    """An SVG of the communes' markers and the box it spans (for turning a tap into lat/lon)."""
    lats, lons = [u.lat for u in communes], [u.lon for u in communes]
    pad = 0.01
    box = {"n": max(lats) + pad, "s": min(lats) - pad, "w": min(lons) - pad, "e": max(lons) + pad}
    width, height = 400, round(400 * (box["n"] - box["s"]) / max(box["e"] - box["w"], 1e-6))
    dots = "".join(
        f'<circle cx="{(u.lon - box["w"]) / (box["e"] - box["w"]) * width:.1f}" '
        f'cy="{(box["n"] - u.lat) / (box["n"] - box["s"]) * height:.1f}" r="4" fill="#5b7f56">'
        f"<title>{html.escape(u.full_name)}</title></circle>"
        for u in communes
    )
    svg = (
        f'<svg id="map" viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(label)}">{dots}'
        '<circle id="pin" r="7" fill="#b3261e" stroke="#fff" stroke-width="2" visibility="hidden"/></svg>'
    )
    return svg, {**box, "width": width, "height": height}


def report_page(
    lang: str,
    *,
    services: Sequence[tuple[str, str]],
    communes: Sequence[units.Unit],
    api_key: str,
    photos: bool,
) -> str:
    """The form: category, text, optional photo, a point (map, location or commune and address), optional contact."""
    t = TEXT[lang]
    options = "".join(f'<option value="{html.escape(c)}">{html.escape(n)}</option>' for c, n in services)
    communes_sorted = sorted(communes, key=lambda u: units.ascii_fold(u.full_name))
    commune_options = "".join(f'<option value="{u.code}">{html.escape(u.full_name)}</option>' for u in communes_sorted)
    svg, box = _map_svg(communes, t["map"])
    photo = (
        f'<label for="photo">{t["photo"]}</label><input id="photo" name="photo" type="file" accept="image/*" capture="environment">'
        if photos
        else ""
    )
    body = f"""
<p>{t["intro"]}</p>
<form id="report" novalidate>
<fieldset><legend>{t["what"]}</legend>
<label for="category">{t["category"]}</label><select id="category" name="service_code" required>{options}</select>
<label for="description">{t["text"]}</label><textarea id="description" name="description" required maxlength="4000"></textarea>
{photo}</fieldset>
<fieldset><legend>{t["where"]}</legend><p class="help" id="where-help">{t["where_help"]}</p>
{svg}
<button type="button" class="secondary" id="locate">{t["locate"]}</button>
<div class="row"><div><label for="lat">{t["lat"]}</label><input id="lat" name="lat" inputmode="decimal" aria-describedby="where-help"></div>
<div><label for="long">{t["lon"]}</label><input id="long" name="long" inputmode="decimal" aria-describedby="where-help"></div></div>
<label for="unit">{t["commune"]}</label><select id="unit" name="attribute[unit]"><option value="">{t["commune_any"]}</option>{commune_options}</select>
<label for="address">{t["address"]}</label><input id="address" name="address_string" maxlength="500" autocomplete="street-address">
</fieldset>
<fieldset><legend>{t["contact"]}</legend>
<label for="name">{t["name"]}</label><input id="name" name="first_name" autocomplete="name" maxlength="200">
<label for="phone">{t["phone"]}</label><input id="phone" name="phone" type="tel" autocomplete="tel">
<label for="email">{t["email"]}</label><input id="email" name="email" type="email" autocomplete="email">
</fieldset>
<button type="submit" id="send">{t["send"]}</button>
</form>
<div id="result" role="status" aria-live="polite" tabindex="-1"></div>
<script>
const T = {json.dumps(t, ensure_ascii=False)}, LANG = {json.dumps(lang)}, KEY = {json.dumps(api_key)};
const BOX = {json.dumps(box)}, idem = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
const $ = (id) => document.getElementById(id), result = $("result");
function pin(lat, lon) {{
  $("lat").value = lat.toFixed(6); $("long").value = lon.toFixed(6);
  const p = $("pin"); p.setAttribute("cx", (lon - BOX.w) / (BOX.e - BOX.w) * BOX.width);
  p.setAttribute("cy", (BOX.n - lat) / (BOX.n - BOX.s) * BOX.height); p.setAttribute("visibility", "visible");
}}
$("map").addEventListener("click", (e) => {{
  const r = $("map").getBoundingClientRect();
  const x = (e.clientX - r.left) / r.width, y = (e.clientY - r.top) / r.height;
  pin(BOX.n - y * (BOX.n - BOX.s), BOX.w + x * (BOX.e - BOX.w));
}});
$("locate").addEventListener("click", () => navigator.geolocation && navigator.geolocation.getCurrentPosition(
  (p) => pin(p.coords.latitude, p.coords.longitude)));
function say(html, error) {{
  result.className = "result" + (error ? " error" : ""); result.innerHTML = html; result.focus();
}}
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
async function photoUrl() {{
  const file = $("photo") && $("photo").files[0];
  if (!file) return null;
  const r = await fetch("v1/photos", {{method: "POST", body: file, headers: {{"Content-Type": file.type || "application/octet-stream"}}}});
  const b = await r.json();
  if (!r.ok) throw new Error(T.photo_failed + " " + (b.detail || r.status));
  return b.url;
}}
$("report").addEventListener("submit", async (e) => {{
  e.preventDefault();
  const f = new FormData($("report")), body = new URLSearchParams();
  for (const [k, v] of f) if (k !== "photo" && String(v).trim()) body.append(k, String(v).trim());
  if (!body.has("lat") && !body.has("attribute[unit]")) {{ say(esc(T.error + " " + T.need_place), true); return; }}
  if (body.has("attribute[unit]") && body.has("lat")) {{ body.delete("lat"); body.delete("long"); }}
  $("send").disabled = true; $("send").textContent = T.sending;
  try {{
    const media = await photoUrl();
    if (media) body.append("media_url", media);
    body.append("api_key", KEY);
    const r = await fetch("../open311/v2/requests.json?lang=" + LANG, {{method: "POST", body, headers: {{"Idempotency-Key": idem}}}});
    const b = await r.json();
    if (!r.ok) {{ say(esc(T.error + " " + (b[0] && b[0].description || r.status)), true); return; }}
    const id = b[0].service_request_id;
    say("<p>" + esc(T.sent) + ' <strong id="report-id">' + esc(id) + '</strong></p><p><a href="follow?id=' +
        encodeURIComponent(id) + "&lang=" + LANG + '">' + esc(T.follow_link) + "</a></p>");
  }} catch (err) {{ say(esc(T.error + " " + err.message), true); }}
  finally {{ $("send").disabled = false; $("send").textContent = T.send; }}
}});
</script>"""
    return _shell(lang, t["title"], f"?lang={'en' if lang == 'vi' else 'vi'}", body)


def follow_page(lang: str) -> str:
    """Follow a report by its number: status, the note (reason, request or answer), deadline and history."""
    t = TEXT[lang]
    body = f"""
<form id="follow"><label for="id">{t["id"]}</label><input id="id" name="id" required autocomplete="off">
<button type="submit">{t["look"]}</button></form>
<div id="result" role="status" aria-live="polite" tabindex="-1"></div>
<p><a href="./?lang={lang}">{t["new_report"]}</a></p>
<script>
const T = {json.dumps(t, ensure_ascii=False)}, LANG = {json.dumps(lang)};
const $ = (id) => document.getElementById(id), result = $("result");
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
const when = (s) => new Date(s).toLocaleString(LANG === "vi" ? "vi-VN" : "en-GB", {{timeZone: "Asia/Ho_Chi_Minh"}});
async function look(id) {{
  const r = await fetch("../open311/v2/requests/" + encodeURIComponent(id) + ".json?lang=" + LANG);
  result.className = "result";
  if (!r.ok) {{ result.className = "result error"; result.innerHTML = esc(T.not_found); result.focus(); return; }}
  const q = (await r.json())[0], steps = (q.history || []).map((h) =>
    "<li>" + esc(when(h.at)) + ": " + esc(LANG === "en" ? h.label_en : h.label_vi) + "</li>").join("");
  result.innerHTML = "<h2>" + esc(T.status) + ': <span id="status">' + esc(q.status_notes || q.status) + "</span></h2>" +
    "<p>" + esc(q.service_name || q.service_code) + " — " + esc(q.unit_name) + "</p><p>" + esc(q.description || "") + "</p>" +
    (q.answer_by ? "<p>" + esc(T.answer_by) + ": " + esc(when(q.answer_by)) + "</p>" : "") +
    "<h3>" + esc(T.history) + '</h3><ol id="history">' + steps + "</ol>";
  result.focus();
}}
$("follow").addEventListener("submit", (e) => {{ e.preventDefault(); look($("id").value.trim()); }});
const given = new URLSearchParams(location.search).get("id");
if (given) {{ $("id").value = given; look(given); }}
</script>"""
    return _shell(lang, t["follow_title"], f"?lang={'en' if lang == 'vi' else 'vi'}", body)
