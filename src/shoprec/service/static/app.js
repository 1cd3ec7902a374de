// shoprec storefront: a dependency-free single page over the /v1 API.
// Every view, click, cart change and purchase goes back to /v1/events, so the page adapts as you browse.
"use strict";

const CFG = window.SHOPREC || { apiKey: "", api: "/v1" };
const $ = (sel, root = document) => root.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
// Highlights come from the server with <mark> tags around escaped text; keep only those tags.
const safeMark = (s) => esc(s).replace(/&lt;mark&gt;/g, "<mark>").replace(/&lt;\/mark&gt;/g, "</mark>");

const I18N = {
  en: { brand: "shoprec shop", search: "Search", searchPlaceholder: "Search products… (try 无线耳机)", cart: "Cart",
        newVisitor: "New visitor", forYou: "Recommended for you", welcome: "Welcome! Popular right now",
        explore: "Explore other categories", results: "results for", didYouMean: "Did you mean", similar: "Similar items",
        fbt: "Frequently bought together", addToCart: "Add to cart", added: "Added ✓", emptyCart: "Your cart is empty.",
        checkout: "Buy now", bought: "Thank you for your order!", alsoLike: "You may also like", sort: "Sort",
        relevance: "Relevance", priceAsc: "Price: low to high", priceDesc: "Price: high to low", rating: "Rating",
        prev: "Previous", next: "Next", noResults: "No results. Showing related products instead.", filters: "Filters",
        category: "Category", brandF: "Brand", price: "Price", inStock: "In stock only", remove: "Remove", outOfStock: "Out of stock" },
  zh: { brand: "shoprec 商店", search: "搜索", searchPlaceholder: "搜索商品…（试试 wireless earbuds）", cart: "购物车",
        newVisitor: "新访客", forYou: "为你推荐", welcome: "欢迎！当前热门", explore: "探索其他品类", results: "条结果：",
        didYouMean: "你是不是要找", similar: "相似商品", fbt: "经常一起购买", addToCart: "加入购物车", added: "已加入 ✓",
        emptyCart: "购物车是空的。", checkout: "立即购买", bought: "感谢你的订单！", alsoLike: "你可能还喜欢", sort: "排序",
        relevance: "相关度", priceAsc: "价格从低到高", priceDesc: "价格从高到低", rating: "评分", prev: "上一页", next: "下一页",
        noResults: "没有结果，为你展示相关商品。", filters: "筛选", category: "品类", brandF: "品牌", price: "价格",
        inStock: "仅看有货", remove: "移除", outOfStock: "缺货" },
};

const state = {
  lang: localStorage.getItem("shoprec.lang") || "en",
  visitor: localStorage.getItem("shoprec.visitor") || newVisitorId(),
  session: sessionStorage.getItem("shoprec.session") || ("s-" + Math.random().toString(36).slice(2, 10)),
  cart: JSON.parse(localStorage.getItem("shoprec.cart") || "[]"),
  products: new Map(),
};
localStorage.setItem("shoprec.visitor", state.visitor);
sessionStorage.setItem("shoprec.session", state.session);

function newVisitorId() { return "web-" + Math.random().toString(36).slice(2, 10); }
function t(key) { return (I18N[state.lang] || I18N.en)[key] || I18N.en[key] || key; }
function locale() { return state.lang === "zh" ? "zh-CN" : "en-US"; }
function device() { return window.innerWidth < 700 ? "mobile" : "desktop"; }

async function api(path, params = {}, options = {}) {
  const url = new URL(CFG.api + path, location.origin);
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) v.forEach((x) => url.searchParams.append(k, x));
    else if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  const res = await fetch(url, { ...options, headers: { "X-API-Key": CFG.apiKey, "Content-Type": "application/json", ...(options.headers || {}) } });
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  return res.json();
}

let eventCounter = 0;
function sendEvent(type, itemId, extra = {}) {
  const product = itemId ? state.products.get(itemId) : null;
  const event = {
    event_id: `${state.visitor}-${Date.now()}-${eventCounter++}`, user_id: state.visitor, session_id: state.session,
    item_id: itemId || null, type, timestamp: new Date().toISOString(), quantity: extra.quantity || 1,
    price: product && product.price != null ? product.price : null, query: extra.query || null,
    context: { device: device(), locale: locale(), referrer: extra.referrer || location.hash || "#/" },
  };
  return api("/events", {}, { method: "POST", body: JSON.stringify(event) }).catch((e) => console.warn("event not sent", e));
}

function title(p) {
  if (!p) return "";
  const a = p.attributes || {};
  if (state.lang === "zh") return a.title_zh || p.title;
  return p.language === "zh" ? (a.title_en || p.title) : p.title;
}
function description(p) {
  const a = p.attributes || {};
  if (state.lang === "zh") return a.description_zh || p.description || "";
  return p.language === "zh" ? (a.description_en || p.description || "") : (p.description || "");
}
function money(p) { return p && p.price != null ? `${p.currency === "CNY" ? "¥" : "$"}${Number(p.price).toFixed(2)}` : ""; }
function image(p) { return (p && p.image_url && p.image_url.startsWith("/")) ? p.image_url : "/static/img/product.svg"; }

function card(hit, { context = "", query = "" } = {}) {
  const p = hit.product || {};
  state.products.set(hit.id, p);
  const titleHtml = hit.highlights && hit.highlights.title && state.lang === (p.language || "en") ? safeMark(hit.highlights.title) : esc(title(p));
  return `<li class="card" data-id="${esc(hit.id)}">
    <a href="#/product/${encodeURIComponent(hit.id)}" class="card-link" data-item="${esc(hit.id)}" data-context="${esc(context)}" data-query="${esc(query)}">
      <img src="${esc(image(p))}" alt="" loading="lazy" width="200" height="150">
      <span class="title">${titleHtml}</span>
    </a>
    <span class="price">${esc(money(p))}${p.available === false ? ` · <em>${t("outOfStock")}</em>` : ""}</span>
    ${hit.reason ? `<span class="reason" title="${esc(hit.reason)}">${esc(hit.reason)}</span>` : ""}
  </li>`;
}

function section(titleText, hits, context) {
  if (!hits || !hits.length) return "";
  return `<section class="shelf" data-context="${esc(context)}"><h2>${esc(titleText)}</h2><ul class="grid">${hits.map((h) => card(h, { context })).join("")}</ul></section>`;
}

async function recommend(scenario, params = {}) {
  try {
    return (await api(`/recommend/${scenario}`, { user: state.visitor, k: 12, device: device(), locale: locale(), ...params })).hits;
  } catch (e) { console.warn(scenario, e); return []; }
}

// -- pages --------------------------------------------------------------------------------------
async function homePage() {
  const [home, welcome, cross] = await Promise.all([recommend("home"), recommend("welcome"), recommend("cross_category")]);
  const [mainHits, mainContext, mainTitle] = home.length ? [home, "home", t("forYou")] : [welcome, "welcome", t("welcome")];
  // A new visitor's cross-category list falls back to what is popular: never repeat a card.
  const shown = new Set(mainHits.map((h) => h.id));
  const more = cross.filter((h) => !shown.has(h.id));
  return section(mainTitle, mainHits, mainContext) + (more.length >= 4 ? section(t("explore"), more, "cross_category") : "");
}

// Price bands read best in price order; other facets by count (as the API returns them).
function facetEntries(name, counts) {
  const entries = Object.entries(counts).slice(0, 12);
  if (name !== "price_band") return entries;
  const bound = (label) => parseFloat(String(label).replace(/[^0-9.]+/g, " ").trim().split(" ").pop()) || 0;
  return entries.sort((a, b) => bound(a[0]) - bound(b[0]) || String(a[0]).localeCompare(String(b[0])));
}

async function searchPage(params) {
  const q = params.get("q") || "";
  const page = Number(params.get("page") || 1);
  const sort = params.get("sort") || "relevance";
  const query = { q, page, size: 24, sort, user: state.visitor, device: device(), locale: locale(),
                  category: params.get("category"), brand: params.getAll("brand"), price_min: params.get("price_min"),
                  price_max: params.get("price_max"), available: params.get("available") };
  const res = await api("/search", query);
  sendEvent("search", null, { query: q });
  $("#q").value = q;
  const facetHtml = Object.entries(res.facets || {}).map(([name, counts]) => `
    <fieldset class="facet"><legend>${esc({ category: t("category"), brand: t("brandF"), price_band: t("price") }[name] || name)}</legend>
      ${facetEntries(name, counts).map(([value, n]) => {
        const key = name === "brand" ? "brand" : name === "category" ? "category" : "price_band";
        const checked = (key === "brand" ? params.getAll("brand").includes(value) : params.get(key) === value) ? "checked" : "";
        return `<label><input type="checkbox" class="facet-box" data-facet="${esc(key)}" value="${esc(value)}" ${checked}> ${esc(value)} <span class="count">${n}</span></label>`;
      }).join("")}
    </fieldset>`).join("");
  const dym = res.did_you_mean && res.did_you_mean !== q
    ? `<p class="dym">${t("didYouMean")} <a href="#/search?q=${encodeURIComponent(res.did_you_mean)}">${esc(res.did_you_mean)}</a>?</p>` : "";
  const zero = (res.info && res.info.fallback) ? `<p class="notice">${t("noResults")}</p>` : "";
  const pages = Math.max(1, Math.ceil((res.total || 0) / 24));
  const link = (p) => { const n = new URLSearchParams(params); n.set("page", p); return `#/search?${n}`; };
  return `<div class="search-layout">
    <aside class="facets" aria-label="${t("filters")}">
      <label class="stock"><input type="checkbox" id="in-stock" ${params.get("available") === "true" ? "checked" : ""}> ${t("inStock")}</label>
      ${facetHtml}
    </aside>
    <div>
      <div class="result-bar"><span><strong>${res.total}</strong> ${t("results")} “${esc(q)}”</span>
        <label>${t("sort")} <select id="sort">${[["relevance", t("relevance")], ["price_asc", t("priceAsc")], ["price_desc", t("priceDesc")], ["rating", t("rating")]]
          .map(([v, l]) => `<option value="${v}" ${v === sort ? "selected" : ""}>${l}</option>`).join("")}</select></label></div>
      ${dym}${zero}
      <ul class="grid results">${res.hits.map((h) => card(h, { context: "search", query: q })).join("")}</ul>
      <nav class="pager" aria-label="pages">
        ${page > 1 ? `<a href="${link(page - 1)}">${t("prev")}</a>` : ""} <span>${page} / ${pages}</span>
        ${page < pages ? `<a href="${link(page + 1)}" id="next-page">${t("next")}</a>` : ""}
      </nav>
    </div></div>`;
}

async function productPage(id) {
  const [similar, fbt] = await Promise.all([recommend("similar", { item: id }), recommend("frequently_bought_together", { item: id })]);
  let p = state.products.get(id);
  if (!p) {  // deep link: the product arrives with any recommendation that mentions it, else from search
    const res = await api("/search", { q: id, k: 1 }).catch(() => ({ hits: [] }));
    p = (res.hits.find((h) => h.id === id) || {}).product || { title: id };
    state.products.set(id, p);
  }
  sendEvent("view", id);
  const attrs = Object.entries(p.attributes || {}).filter(([k]) => !/^(title|description)_/.test(k))
    .map(([k, v]) => `<li><strong>${esc(k)}</strong>: ${esc(v)}</li>`).join("");
  return `<article class="product" data-id="${esc(id)}">
      <img src="${esc(image(p))}" alt="" width="400" height="300">
      <div><h1>${esc(title(p))}</h1>
        <p class="crumbs">${esc((p.category || []).join(" › "))} · ${esc(p.brand || "")}</p>
        <p class="price big">${esc(money(p))}</p>
        <p>${esc(description(p))}</p><ul class="attrs">${attrs}</ul>
        <button id="add-to-cart" data-item="${esc(id)}" ${p.available === false ? "disabled" : ""}>${t("addToCart")}</button>
      </div></article>` + section(t("fbt"), fbt, "frequently_bought_together") + section(t("similar"), similar, "similar");
}

async function cartPage() {
  if (!state.cart.length) return `<h1>${t("cart")}</h1><p>${t("emptyCart")}</p>` + section(t("alsoLike"), await recommend("welcome"), "welcome");
  const rows = state.cart.map((id) => { const p = state.products.get(id) || { title: id };
    return `<li class="cart-row"><a href="#/product/${encodeURIComponent(id)}">${esc(title(p))}</a> <span>${esc(money(p))}</span>
      <button class="remove" data-item="${esc(id)}">${t("remove")}</button></li>`; }).join("");
  const suggestions = await recommend("cart", { cart: state.cart });
  return `<h1>${t("cart")}</h1><ul class="cart">${rows}</ul><button id="checkout">${t("checkout")}</button>` + section(t("alsoLike"), suggestions, "cart");
}

// -- routing and events ---------------------------------------------------------------------------
async function render() {
  const [path, qs] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(qs || "");
  const main = $("#main");
  main.setAttribute("aria-busy", "true");
  try {
    let html;
    if (path.startsWith("/search")) html = await searchPage(params);
    else if (path.startsWith("/product/")) html = await productPage(decodeURIComponent(path.slice(9)));
    else if (path.startsWith("/cart")) html = await cartPage();
    else html = await homePage();
    main.innerHTML = html;
  } catch (e) {
    main.innerHTML = `<p class="error">Something went wrong: ${esc(e.message)}</p>`;
  }
  main.removeAttribute("aria-busy");
  document.body.dataset.page = path.split("/")[1] || "home";
  updateChrome();
}

function updateChrome() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  $("#lang").textContent = state.lang === "zh" ? "English" : "中文";
  $("#cart-count").textContent = state.cart.length;
  $("#visitor").textContent = `visitor ${state.visitor}`;
}

function saveCart() { localStorage.setItem("shoprec.cart", JSON.stringify(state.cart)); updateChrome(); }

document.addEventListener("click", async (e) => {
  const link = e.target.closest(".card-link");
  if (link) sendEvent("click", link.dataset.item, { query: link.dataset.query, referrer: link.dataset.context });
  const add = e.target.closest("#add-to-cart");
  if (add) {
    if (!state.cart.includes(add.dataset.item)) state.cart.push(add.dataset.item);
    saveCart();
    await sendEvent("add_to_cart", add.dataset.item);
    add.textContent = t("added");
  }
  const remove = e.target.closest(".remove");
  if (remove) {
    state.cart = state.cart.filter((id) => id !== remove.dataset.item);
    saveCart();
    await sendEvent("remove_from_cart", remove.dataset.item);
    render();
  }
  if (e.target.closest("#checkout")) {
    await Promise.all(state.cart.map((id) => sendEvent("purchase", id)));
    state.cart = [];
    saveCart();
    $("#main").innerHTML = `<p class="notice" id="thanks">${t("bought")}</p>` + section(t("forYou"), await recommend("home"), "home");
  }
});

document.addEventListener("change", (e) => {
  const [path, qs] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(qs || "");
  if (e.target.id === "sort") { params.set("sort", e.target.value); params.delete("page"); location.hash = `${path}?${params}`; }
  if (e.target.id === "in-stock") { e.target.checked ? params.set("available", "true") : params.delete("available"); params.delete("page"); location.hash = `${path}?${params}`; }
  if (e.target.classList.contains("facet-box")) {
    const key = e.target.dataset.facet, value = e.target.value;
    if (key === "brand") {
      const brands = params.getAll("brand").filter((b) => b !== value);
      params.delete("brand");
      (e.target.checked ? [...brands, value] : brands).forEach((b) => params.append("brand", b));
    } else if (key === "price_band") {
      const [lo, hi] = value.split("-");
      if (e.target.checked) { params.set("price_min", parseFloat(lo) || 0); if (hi) params.set("price_max", parseFloat(hi)); else params.delete("price_max"); }
      else { params.delete("price_min"); params.delete("price_max"); }
    } else if (e.target.checked) params.set(key, value); else params.delete(key);
    params.delete("page");
    location.hash = `${path}?${params}`;
  }
});

// Search box with autocomplete (debounced; keyboard accessible).
const box = $("#q"), list = $("#suggestions");
let suggestTimer = null, active = -1;
box.addEventListener("input", () => {
  clearTimeout(suggestTimer);
  const prefix = box.value.trim();
  if (!prefix) { list.hidden = true; box.setAttribute("aria-expanded", "false"); return; }
  suggestTimer = setTimeout(async () => {
    const res = await api("/suggest", { q: prefix, k: 8 }).catch(() => ({ suggestions: [] }));
    active = -1;
    list.innerHTML = res.suggestions.map((s, i) => `<li role="option" id="sugg-${i}" data-value="${esc(s)}">${esc(s)}</li>`).join("");
    list.hidden = !res.suggestions.length;
    box.setAttribute("aria-expanded", String(!list.hidden));
  }, 120);
});
box.addEventListener("keydown", (e) => {
  const items = [...list.querySelectorAll("li")];
  if (list.hidden || !items.length) return;
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    e.preventDefault();
    active = (active + (e.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
    items.forEach((li, i) => li.classList.toggle("active", i === active));
    box.setAttribute("aria-activedescendant", items[active].id);
  } else if (e.key === "Enter" && active >= 0) { e.preventDefault(); pick(items[active].dataset.value); }
  else if (e.key === "Escape") list.hidden = true;
});
list.addEventListener("mousedown", (e) => { const li = e.target.closest("li"); if (li) { e.preventDefault(); pick(li.dataset.value); } });
function pick(value) { box.value = value; list.hidden = true; location.hash = `#/search?q=${encodeURIComponent(value)}`; }
$("#search-form").addEventListener("submit", (e) => { e.preventDefault(); list.hidden = true; location.hash = `#/search?q=${encodeURIComponent(box.value.trim())}`; });

$("#lang").addEventListener("click", () => { state.lang = state.lang === "zh" ? "en" : "zh"; localStorage.setItem("shoprec.lang", state.lang); render(); });
$("#new-visitor").addEventListener("click", () => {
  state.visitor = newVisitorId(); state.cart = []; state.session = "s-" + Math.random().toString(36).slice(2, 10);
  localStorage.setItem("shoprec.visitor", state.visitor); sessionStorage.setItem("shoprec.session", state.session); saveCart();
  location.hash = "#/"; render();
});
window.addEventListener("hashchange", render);
render();
