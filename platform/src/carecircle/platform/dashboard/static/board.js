// CareCircle alert board: live updates over Server-Sent Events, staff actions over the
// API, a beep for new critical alerts.  No framework, no build step.
(function () {
  "use strict";
  var rows = document.getElementById("board-rows");
  var live = document.getElementById("live");
  var soundButton = document.getElementById("sound");
  var lang = document.documentElement.lang.indexOf("zh") === 0 ? "zh" : "en";
  var soundOn = false;
  var audio = null;

  function cookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : "";
  }

  function beep() {
    if (!soundOn) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      [0, 0.35, 0.7].forEach(function (at) {
        var osc = audio.createOscillator();
        var gain = audio.createGain();
        osc.type = "square";
        osc.frequency.value = 880;
        gain.gain.value = 0.15;
        osc.connect(gain);
        gain.connect(audio.destination);
        osc.start(audio.currentTime + at);
        osc.stop(audio.currentTime + at + 0.2);
      });
    } catch (e) { /* no audio device: the red row still shows */ }
  }

  soundButton.addEventListener("click", function () {
    soundOn = !soundOn;
    soundButton.textContent = soundOn ? soundButton.dataset.on : soundButton.dataset.off;
    if (soundOn) beep();
  });

  function refreshSession() {
    return fetch("/session/refresh", {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": cookie("cc_csrf") }
    }).then(function (r) {
      if (r.status === 401) window.location = "/login?next=/board";
      return r.ok;
    });
  }

  var loading = null;
  var again = false;
  function reload() {
    if (loading) { again = true; return loading; }
    loading = fetch("/board/rows?lang=" + lang, { credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) return refreshSession().then(function () { return null; });
        return r.text();
      })
      .then(function (html) {
        if (html === null) return;
        // keep what staff were choosing while the rows are redrawn
        var picked = {};
        rows.querySelectorAll("select.responder").forEach(function (s) { picked[s.id] = s.value; });
        rows.innerHTML = html;
        Object.keys(picked).forEach(function (key) {
          var s = document.getElementById(key);
          if (s) s.value = picked[key];
        });
      })
      .finally(function () {
        loading = null;
        if (again) { again = false; reload(); }
      });
    return loading;
  }

  function bodyFor(id, action) {
    if (action === "resolve") return { outcome: "resident_fine" };
    if (action === "dispatch") {
      var pick = document.getElementById("responder-" + id);
      if (pick && pick.value) return { responder_id: pick.value };
    }
    return {};
  }

  function act(id, action, retried) {
    return fetch("/api/v1/alerts/" + id + "/" + action, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": cookie("cc_csrf") },
      body: JSON.stringify(bodyFor(id, action))
    }).then(function (r) {
      if (r.status === 401 && !retried) {
        return refreshSession().then(function () { return act(id, action, true); });
      }
      return reload();
    });
  }

  rows.addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-action]");
    if (!b) return;
    b.disabled = true;
    act(b.dataset.id, b.dataset.action, false);
  });

  var source = null;
  function connect() {
    source = new EventSource("/api/v1/live");
    source.onopen = function () {
      live.className = "live on";
      live.textContent = live.dataset.on;
      reload();
    };
    source.addEventListener("alert", function (ev) {
      var data = JSON.parse(ev.data);
      if (data.change === "opened" && data.severity === "critical") beep();
      reload();
    });
    source.onerror = function () {
      live.className = "live off";
      live.textContent = live.dataset.off;
      if (source.readyState === EventSource.CLOSED) {
        refreshSession().then(function () { setTimeout(connect, 2000); });
      }
    };
  }
  connect();
  setInterval(refreshSession, 10 * 60 * 1000);
})();
