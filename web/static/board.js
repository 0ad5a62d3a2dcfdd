// The dispatcher's board: the map, the background solve, and drag-and-drop moves.
// Served as a file (the policy forbids inline scripts); texts come from the page or the JSON.
(function () {
  "use strict";

  function csrfToken() {
    var field = document.querySelector('input[name="csrf_token"]');
    return field ? field.value : "";
  }

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); });
  }

  function postJSON(url, form) {
    return fetch(url, {
      method: "POST", body: form, credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() }
    }).then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); });
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // ------------------------------------------------------------------ map
  function popup(title, rows) {
    var box = el("div", "popup");
    box.appendChild(el("h4", "", title));
    rows.forEach(function (row) { box.appendChild(el("p", "", row)); });
    return box;
  }

  function pin(cls, colour, text) {
    var node = el("div", cls, text);
    if (colour) { node.style.backgroundColor = colour; }  // CSSOM: allowed by the policy
    return L.divIcon({ html: node, className: "", iconSize: null, iconAnchor: [12, 12], popupAnchor: [0, -10] });
  }

  function drawMap(box, data) {
    var map = L.map(box, { zoomSnap: 0.25, preferCanvas: false });
    if (data.tiles) {
      L.tileLayer(data.tiles.url, { attribution: data.tiles.attribution, maxZoom: 19 }).addTo(map);
    }
    var lb = data.labels;
    L.marker([data.outlet.lat, data.outlet.lon], { icon: pin("outlet-pin"), zIndexOffset: 500 })
      .bindPopup(popup(data.outlet.name, [lb.outlet])).addTo(map);
    data.routes.forEach(function (route) {
      if (!route.stops.length) { return; }
      var line = [route.start].concat(route.stops.map(function (s) { return [s.lat, s.lon]; }));
      L.polyline(line, { color: route.colour, weight: 3.5, opacity: 0.85 }).addTo(map);
      L.marker(route.start, { icon: pin("start-pin", route.colour) }).bindTooltip(route.name).addTo(map);
      route.stops.forEach(function (s) {
        var rows = [s.code + " · " + route.name, lb.window + ": " + s.window, lb.eta + ": " + s.eta,
                    lb.start + ": " + s.start, lb.status + ": " + s.status];
        L.marker([s.lat, s.lon], { icon: pin("stop-pin" + (s.late ? " late" : ""), route.colour, String(s.n)) })
          .bindPopup(popup(s.customer, rows)).addTo(map);
      });
    });
    data.unassigned.forEach(function (u) {
      L.marker([u.lat, u.lon], { icon: pin("unassigned-pin"), zIndexOffset: 1000 })
        .bindPopup(popup(u.customer, [u.code + " · " + lb.unassigned, lb.window + ": " + u.window, u.reason]))
        .addTo(map);
    });
    map.fitBounds(data.bounds, { padding: [24, 24] });
    box.setAttribute("data-ready", "1");
  }

  function initMap() {
    var box = document.getElementById("board-map");
    if (!box || typeof L === "undefined") { return; }
    getJSON(box.getAttribute("data-map-url")).then(function (res) {
      if (res.ok) { drawMap(box, res.body); }
    });
  }

  // ------------------------------------------------------------------ solving
  function initSolve() {
    var form = document.getElementById("solve-form");
    if (!form) { return; }
    var status = document.getElementById("solve-status");
    var bar = document.getElementById("solve-progress");
    var message = document.getElementById("solve-message");
    var stop = document.getElementById("solve-stop");
    var button = document.getElementById("solve-button");
    var timer = null;

    function show(job) {
      status.hidden = false;
      bar.value = job.progress;
      message.textContent = job.message;
      stop.disabled = job.finished || job.stop_requested;
      stop.setAttribute("data-stop-url", form.action.replace(/solve$/, "jobs/" + job.id + "/stop"));
      button.disabled = !job.finished;
    }

    function poll(url) {
      getJSON(url).then(function (res) {
        if (!res.ok) { message.textContent = res.body.message || ""; button.disabled = false; return; }
        show(res.body);
        if (res.body.finished) {
          if (res.body.board_url && res.body.status !== "failed") { window.location.assign(res.body.board_url); }
          return;
        }
        timer = window.setTimeout(function () { poll(url); }, 1000);
      });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      button.disabled = true;
      postJSON(form.action, new FormData(form)).then(function (res) {
        if (!res.ok) { message.textContent = res.body.message || ""; status.hidden = false; button.disabled = false; return; }
        show(res.body);
        poll(form.action.replace(/solve$/, "jobs/" + res.body.id));
      });
    });

    stop.addEventListener("click", function () {
      var url = stop.getAttribute("data-stop-url");
      if (!url) { return; }
      stop.disabled = true;
      postJSON(url, new FormData()).then(function (res) { if (res.ok) { show(res.body); } });
    });

    var running = form.getAttribute("data-job-url");
    if (running) { poll(running); }
  }

  // ------------------------------------------------------------------ moving
  function initMoves() {
    var routes = document.querySelector(".routes");
    var dialog = document.getElementById("move-dialog");
    if (!routes || !dialog) { return; }
    var plan = routes.getAttribute("data-plan");
    var previewUrl = routes.getAttribute("data-preview-url");
    var confirm = document.getElementById("move-confirm");
    var dragged = null;

    function dropIndex(list, y) {
      var items = Array.prototype.filter.call(list.children, function (li) { return li !== dragged; });
      for (var i = 0; i < items.length; i++) {
        var box = items[i].getBoundingClientRect();
        if (y < box.top + box.height / 2) { return i; }
      }
      return items.length;
    }

    function clearMarks() {
      document.querySelectorAll(".drop-target, .drop-before").forEach(function (n) {
        n.classList.remove("drop-target"); n.classList.remove("drop-before");
      });
    }

    function fill(list, items) {
      list.textContent = "";
      items.forEach(function (text) { list.appendChild(el("li", "", text)); });
    }

    function ask(visit, technician, position) {
      var query = "?plan=" + encodeURIComponent(plan) + "&visit=" + encodeURIComponent(visit) +
        "&technician=" + encodeURIComponent(technician) + "&position=" + position;
      getJSON(previewUrl + query).then(function (res) {
        var cost = res.body;
        var verdict = document.getElementById("move-verdict");
        verdict.textContent = cost.reason || cost.message || "";
        verdict.className = cost.feasible ? "verdict-ok" : (cost.allowed ? "verdict-warn" : "verdict-bad");
        fill(document.getElementById("move-summary"), cost.allowed ? cost.summary : []);
        fill(document.getElementById("move-warnings"), cost.warnings || []);
        document.getElementById("move-ok").disabled = !cost.allowed;
        if (cost.plan) {
          confirm.elements.plan.value = cost.plan.id;
          confirm.elements.version.value = cost.plan.version;
        }
        confirm.elements.visit.value = visit;
        confirm.elements.technician.value = technician;
        confirm.elements.position.value = cost.position !== undefined ? cost.position : position;
        dialog.showModal();
      });
    }

    document.querySelectorAll("ol.route li[draggable]").forEach(function (li) {
      li.addEventListener("dragstart", function (event) {
        dragged = li;
        li.classList.add("dragging");
        event.dataTransfer.effectAllowed = "move";
        event.dataTransfer.setData("text/plain", li.getAttribute("data-visit"));
      });
      li.addEventListener("dragend", function () { li.classList.remove("dragging"); clearMarks(); dragged = null; });
    });

    document.querySelectorAll("ol.route").forEach(function (list) {
      list.addEventListener("dragover", function (event) {
        if (!dragged) { return; }
        event.preventDefault();
        clearMarks();
        list.classList.add("drop-target");
        var items = Array.prototype.filter.call(list.children, function (li) { return li !== dragged; });
        var at = dropIndex(list, event.clientY);
        if (items[at]) { items[at].classList.add("drop-before"); }
      });
      list.addEventListener("dragleave", function (event) {
        if (!list.contains(event.relatedTarget)) { list.classList.remove("drop-target"); }
      });
      list.addEventListener("drop", function (event) {
        event.preventDefault();
        if (!dragged || !plan) { return; }
        var position = dropIndex(list, event.clientY);
        var visit = dragged.getAttribute("data-visit");
        clearMarks();
        ask(visit, list.getAttribute("data-technician") || "", position);
      });
    });

    document.getElementById("move-cancel").addEventListener("click", function () { dialog.close(); });
  }

  // ------------------------------------------------------------------ timeline
  function initTimeline() {
    // Clicking a block in the timeline highlights the same visit in the route lists.
    document.querySelectorAll("svg.timeline rect[data-visit]").forEach(function (rect) {
      rect.addEventListener("click", function () {
        var id = rect.getAttribute("data-visit");
        var item = document.querySelector('ol.route li[data-visit="' + id + '"]');
        document.querySelectorAll("rect.highlight").forEach(function (r) { r.classList.remove("highlight"); });
        rect.classList.add("highlight");
        if (item) { item.scrollIntoView({ block: "nearest", behavior: "smooth" }); item.focus(); }
      });
    });
  }

  function start() { initMap(); initSolve(); initMoves(); initTimeline(); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
}());
