// The little the pages do in the browser: count down expiries, filter "only mine", and keep
// the newest events in view. Everything else is htmx swapping server-rendered HTML.
(function () {
  function tick() {
    var now = Math.floor(Date.now() / 1000);
    document.querySelectorAll('.countdown[data-exp]').forEach(function (el) {
      var left = parseInt(el.getAttribute('data-exp'), 10) - now;
      if (isNaN(left)) return;
      if (left <= 0) { el.textContent = 'expired'; el.classList.add('expired'); return; }
      var m = Math.floor(left / 60), s = left % 60;
      el.textContent = m + ':' + (s < 10 ? '0' : '') + s;
    });
  }
  setInterval(tick, 1000);
  document.addEventListener('DOMContentLoaded', tick);
  document.addEventListener('htmx:afterSwap', tick);

  document.addEventListener('change', function (e) {
    if (e.target && e.target.id === 'only-mine') {
      var list = document.getElementById('events');
      if (list) list.classList.toggle('only-mine', e.target.checked);
    }
  });

  // Keep the chat scrolled to its newest line; cap the events list.
  document.addEventListener('htmx:sseMessage', function () {
    var chat = document.getElementById('chat');
    if (chat) chat.scrollTop = chat.scrollHeight;
    var events = document.getElementById('events');
    if (events) {
      var rows = events.querySelectorAll('li.event');
      for (var i = 300; i < rows.length; i++) rows[i].remove();
      var empty = events.querySelector('li.empty');
      if (empty && rows.length) empty.remove();
    }
  });
  document.addEventListener('htmx:afterSwap', function (e) {
    if (e.target && e.target.id === 'chat') {
      var empty = e.target.querySelector('li.empty');
      if (empty) empty.remove();
      e.target.scrollTop = e.target.scrollHeight;
    }
  });
  // Tell the user when a request fails instead of failing silently.
  document.addEventListener('htmx:responseError', function (e) {
    var msg = (e.detail.xhr && e.detail.xhr.responseText) || 'the request failed';
    var box = document.getElementById('toast');
    if (!box) { box = document.createElement('div'); box.id = 'toast'; document.body.appendChild(box); }
    box.textContent = msg.replace(/<[^>]*>/g, '').slice(0, 300);
    box.className = 'show';
    setTimeout(function () { box.className = ''; }, 6000);
  });
})();
