// The explorer's form, enhanced: per variable "all / none" buttons and a box that filters a long
// list of values by label. Everything works without it (the form is a plain GET form whose
// address is the view).
(function () {
  var form = document.getElementById("explorer-form");
  if (!form) return;
  var words = {
    kk: {all: "Барлығын белгілеу", none: "Белгіні алу", find: "Іздеу"},
    ru: {all: "Отметить все", none: "Снять все", find: "Найти"},
    en: {all: "Select all", none: "Clear", find: "Find"}
  };
  var lang = (document.documentElement.lang || "en").slice(0, 2);
  var w = words[lang] || words.en;
  Array.prototype.forEach.call(form.querySelectorAll("fieldset.dim"), function (fs) {
    var box = fs.querySelector(".codes");
    if (!box) return;
    var name = fs.querySelector("legend").textContent;
    var tools = document.createElement("div");
    tools.className = "dim-tools";
    function button(text, checked) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "secondary";
      b.textContent = text;
      b.setAttribute("aria-label", text + ": " + name);
      b.addEventListener("click", function () {
        Array.prototype.forEach.call(box.querySelectorAll("label.code"), function (l) {
          if (l.hidden) return;
          l.querySelector("input").checked = checked;
        });
      });
      return b;
    }
    tools.appendChild(button(w.all, true));
    tools.appendChild(button(w.none, false));
    var labels = box.querySelectorAll("label.code");
    if (labels.length > 12) {
      var find = document.createElement("input");
      find.type = "search";
      find.setAttribute("aria-label", w.find + ": " + name);
      find.placeholder = w.find;
      find.addEventListener("input", function () {
        var q = find.value.toLowerCase();
        Array.prototype.forEach.call(labels, function (l) {
          l.hidden = q !== "" && l.textContent.toLowerCase().indexOf(q) < 0;
        });
      });
      tools.appendChild(find);
    }
    box.parentNode.insertBefore(tools, box);
  });
})();
